"""The operator's changes to the store: for each, the question the confirmation asks, the call
it makes through pq_core's public API, and the line that reports what it did. Any screen asks
for one through `PqApp.confirm`, which asks first and then runs it on the store thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from pq_core import Queue, Status
from pq_tui.display import STATUS_LABEL, clip, inert, plural
from pq_tui.snapshot import View

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


def pause(name: str, paused: bool, actor: str) -> Change:
    """Pause a queue (no consumer gets its jobs; puts go on) or resume it. It asks nothing:
    it loses nothing and is undone by the same key."""
    verb = "pause" if paused else "resume"

    def run(queue: Queue) -> int:
        change = queue.pause if paused else queue.resume
        return int(change(queue=name, actor=actor))

    def report(changed: int) -> str:
        if changed:
            return f"{verb}d queue {name}"
        return f"queue {name} was {'paused' if paused else 'not paused'} already"

    return Change(verb, Text(f"{verb.capitalize()} queue {name}?"), verb.capitalize(), run, report)


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


# -- bulk: every job the view matches ----------------------------------------------------------

BULK_REQUEUE_ALL = (Status.DONE, Status.DEAD)  # unfiltered, requeue leaves held jobs alone


def matching_filter(kind: str, view: View) -> dict[str, Any] | None:
    """The pq_core filter (for count, requeue_matching and delete_matching) of every job the
    view shows that a bulk `kind` changes; None when it changes none (requeue of ready jobs)."""
    status: Any = view.status
    scheduled = view.scheduled
    if kind == "requeue":
        if status == Status.READY:
            return None  # ready already
        if status is None:
            # an error group holds ready (backing off) and dead jobs: its dead ones
            status = [Status.DEAD] if view.error is not None else list(BULK_REQUEUE_ALL)
        scheduled = None
    return {
        "status": status,
        "search": view.search or None,
        "error": view.error,
        "scheduled": scheduled,
        "queue": view.scope,
    }


def count_matching(queue: Queue, kind: str, view: View) -> int:
    where = matching_filter(kind, view)
    return 0 if where is None else queue.count(where.pop("status"), **where)


def describe(kind: str, view: View) -> Text:
    """Which jobs a bulk action takes, in words: "dead jobs with error … matching 'x' in
    queue emails"."""
    where = matching_filter(kind, view) or {}
    status = where.get("status")
    if isinstance(status, list):
        what = " and ".join(STATUS_LABEL[s] for s in status) + " jobs"
    elif status is None:
        what = "jobs of every status"
    elif view.scheduled is not None and status == Status.READY:
        what = "scheduled jobs" if view.scheduled else "ready jobs available now"
    else:
        what = f"{STATUS_LABEL[status]} jobs"
    text = Text(what)
    if view.error is not None:
        text.append(" with the error ")
        start = len(text)
        text.append_text(inert(repr(clip(view.error, 80))))
        text.stylize("red", start)
    if view.search:
        text.append(" matching ")
        text.append_text(inert(repr(view.search), limit=40))
    if view.scope is None:
        text.append(" in every queue")
    else:
        text.append(" in queue ")
        text.append_text(inert(view.scope, limit=30))
    return text


def bulk(kind: str, view: View, count: int, actor: str) -> Change:
    """Requeue or delete every job the view matches (pq_core does it a few hundred per
    transaction, so the store is never locked for long)."""
    where = matching_filter(kind, view) or {}
    if kind == "requeue":
        question = Text.assemble(
            "Put ", (f"all {plural(count, 'job')}", "bold"), " back to ready, attempts reset:\n",
            describe(kind, view), "?",
        )  # fmt: skip

        def run(queue: Queue) -> int:
            return queue.requeue_matching(**where, actor=actor)

        return Change(
            "requeue all", question, "Requeue all", run, lambda n: f"requeued {plural(n, 'job')}"
        )
    question = Text.assemble(
        "Delete ", (f"all {plural(count, 'job')}", "bold"), " for good:\n",
        describe(kind, view), "?\nThis cannot be undone.",
    )  # fmt: skip

    def remove(queue: Queue) -> int:
        return queue.delete_matching(**where, actor=actor)

    return Change(
        "delete all", question, "Delete all", remove, lambda n: f"deleted {plural(n, 'job')}"
    )
