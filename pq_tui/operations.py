"""The operator's changes to the store: for each, the question the confirmation asks, the call
it makes through pq_core's public API, and the line that reports what it did. Any screen asks
for one through `PqApp.confirm`, which asks first and then runs it on the store thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text

from pq_core import Queue, Status
from pq_tui.display import plural

MAX_IDS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Change:
    title: str  # the confirmation's title, and the word in a failure's message
    question: Text
    label: str  # the confirm button's word
    run: Callable[[Queue], int]  # on the store thread; returns how many jobs it changed
    report: Callable[[int], str]


def requeue(ids: Sequence[int], actor: str) -> Change:
    ids = sorted(ids)
    question = Text.assemble(
        "Put ",
        (plural(len(ids), "job"), "bold"),
        " back to ready, with attempts reset?\n",
        (id_list(ids), "dim"),
    )
    return Change(
        "requeue",
        question,
        "Requeue",
        lambda queue: queue.requeue(ids, actor=actor),
        lambda n: f"requeued {plural(n, 'job')}",
    )


def delete(ids: Sequence[int], actor: str) -> Change:
    ids = sorted(ids)
    question = Text.assemble(
        "Delete ",
        (plural(len(ids), "job"), "bold"),
        " for good? This cannot be undone.\n",
        (id_list(ids), "dim"),
    )
    return Change(
        "delete",
        question,
        "Delete",
        lambda queue: queue.delete(ids, actor=actor),
        lambda n: f"deleted {plural(n, 'job')}",
    )


def run_now(ids: Sequence[int], actor: str) -> Change:
    ids = sorted(ids)
    question = Text.assemble("Run ", (plural(len(ids), "scheduled job"), "bold"), " now?")
    return Change(
        "run now",
        question,
        "Run now",
        lambda queue: queue.run_now(ids, actor=actor),
        lambda n: f"{plural(n, 'scheduled job')} made available now",
    )


def purge(status: Status, older_than: str, count: int, scope: str | None, actor: str) -> Change:
    where = "every queue" if scope is None else f"queue {scope}"
    question = Text.assemble(
        "Remove ",
        (plural(count, f"{status.value} job"), "bold"),
        f" last changed more than {older_than or '0s'} ago, from {where}?\nThis cannot be undone.",
    )
    return Change(
        "purge",
        question,
        "Purge",
        lambda queue: queue.purge(older_than or 0, status, queue=scope, actor=actor),
        lambda n: f"purged {plural(n, f'{status.value} job')}",
    )


def id_list(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return f"ids {shown}" + (f" and {more} more" if more > 0 else "")
