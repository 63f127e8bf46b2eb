"""One immutable picture of the queue, taken off the UI thread.

`take` makes every store read one refresh needs (counts, one page of jobs, recent events,
workers) and pre-renders the page's rows, so the UI thread only diffs them into the table.
It never reads more than one page of jobs, whatever the store holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text

from pq_core import Event, Item, Queue, QueueStats, Stats, Status, Worker, identity
from pq_tui.display import (
    SCHEDULED_LABEL,
    SCHEDULED_STYLE,
    STATUS_LABEL,
    STATUS_STYLE,
    error_line,
    inert,
    payload_text,
    span,
    until,
)

PAGE = 100  # jobs per fetched window; the table never holds more
MERGE_DEPTH = 600  # how deep into a listing a window is merged from per-(queue, status) reads
EVENTS = 50
PREVIEW = 200  # characters of payload kept for a row (the table cuts it to fit)
ERROR_PREVIEW = 200


@dataclass(frozen=True, slots=True)
class View:
    """What the operator asked to see: one queue or all, a status filter (with READY,
    `scheduled` True shows only the jobs not available yet, False only the available ones),
    a text filter, an error group's signature, an order and where the fetched window of jobs
    starts."""

    scope: str | None = None  # the queue shown, or None for every queue
    status: Status | None = None
    scheduled: bool | None = None
    search: str = ""
    error: str | None = None
    newest_first: bool = True
    offset: int = 0


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as a table row: the job (for actions and sorting) and its rendered cells."""

    id: int
    status: Status
    cells: tuple[Text, ...]
    item: Item = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store said at `taken_at` for `view`. `total` counts the jobs that match the
    status filter (None with a text filter, which only the page itself can count)."""

    view: View
    scope: str | None
    taken_at: float
    queues: tuple[QueueStats, ...]
    rows: tuple[JobRow, ...]
    total: int | None
    events: tuple[Event, ...]
    workers: tuple[Worker, ...]
    store_seconds: float
    items: tuple[Item, ...] = field(repr=False, default=())
    matches: int | None = None  # a text search's count: exact, or so far while `searching`
    searching: bool = False  # a text search is still reading the store, window by window

    @property
    def counts(self) -> dict[Status, int]:
        totals = dict.fromkeys(Status, 0)
        for qs in self.queues:
            for status, n in qs.counts.items():
                totals[status] += n
        return totals

    @property
    def more_after(self) -> bool:
        """Whether jobs follow the fetched window."""
        if self.total is None and self.matches is not None and not self.searching:
            return self.view.offset + len(self.rows) < self.matches
        if self.total is None:
            return len(self.rows) >= PAGE
        return self.view.offset + len(self.rows) < self.total


def take(
    queue: Queue,
    view: View,
    scope: str | None,
    clock: Callable[[], float],
    *,
    page: int = PAGE,
    show_queue: bool = True,
    items: list[Item] | None = None,
) -> Snapshot:
    """Read one refresh's worth from the store. `scope` is a queue name, or None for every
    queue in the store; `items`, when given, is the window already read (a text search's,
    read window by window of ids). Raises what pq_core raises (StoreLocked and other
    QueueErrors)."""
    started = time.perf_counter()
    stats = queue.stats()
    queues = _queues_in_scope(stats, scope, queue.name)
    total = None
    if not view.search and view.error is None:
        total = sum(matching(qs, view) for qs in queues)
    if items is None:
        items = _page(queue, view, queues, scope, page, total)
    events = queue.events(EVENTS, queue=scope)
    workers = [
        w for w in queue.workers() if scope is None or w.kind != "consumer" or w.queue == scope
    ]
    store_seconds = time.perf_counter() - started
    now = clock()
    rows = tuple(job_row(item, now, show_queue=show_queue) for item in items)
    return Snapshot(
        view=view,
        scope=scope,
        taken_at=now,
        queues=tuple(queues),
        rows=rows,
        total=total,
        events=tuple(events),
        workers=tuple(workers),
        store_seconds=store_seconds,
        items=tuple(items),
    )


def matching(qs: QueueStats, view: View) -> int:
    """How many of a queue's jobs the view's status filter lets through (from its counters)."""
    if view.status is None:
        return qs.total
    if view.status == Status.READY and view.scheduled is not None:
        return qs.scheduled if view.scheduled else qs.available
    return qs.counts.get(view.status, 0)


def _page(
    queue: Queue,
    view: View,
    queues: list[QueueStats],
    scope: str | None,
    page: int,
    total: int | None,
) -> list[Item]:
    """The jobs of the window, read through the store's (queue, status, id) index.

    `items()` asked for one queue and every status, or for one status in every queue, makes
    the store sort the whole selection (there is no index on (queue, id) or (status, id)).
    Near either end of the listing it is cheaper to ask each (queue, status) part for its
    first jobs, in id order from the index, and merge them. A window in the far half is read
    from the far end, in the other order."""
    newest_first, offset = view.newest_first, view.offset
    search = view.search or None
    if view.scheduled or view.error is not None:
        # Scheduled jobs come soonest first (the store's order for them); an error group is
        # one indexed read. Either way the store answers the window itself.
        return queue.items(
            view.status, page, offset, queue=scope, search=search, error=view.error,
            scheduled=view.scheduled, newest_first=newest_first,
        )  # fmt: skip
    if total is not None and offset > total // 2:
        width = min(page, total - offset)
        if width <= 0:
            return []
        flipped = replace(view, newest_first=not newest_first, offset=total - offset - width)
        return _page(queue, flipped, queues, scope, width, None)[::-1]
    statuses = [view.status] if view.status is not None else list(Status)
    parts = [
        (qs.queue, s)
        for qs in queues
        for s in statuses
        if (matching(qs, view) if view.status is not None else qs.counts.get(s))
    ]
    need = offset + page
    when = view.scheduled
    if not parts and not search:
        return []
    if len(parts) == 1 and not search:
        ((name, status),) = parts
        return queue.items(
            status, page, offset, queue=name, scheduled=when, newest_first=newest_first
        )
    if need > MERGE_DEPTH or search or (scope is None and view.status is None):
        # (Every job of every queue in id order is the table's own order: no sort either way.)
        return queue.items(
            view.status, page, offset, queue=scope, search=search, scheduled=when,
            newest_first=newest_first,
        )  # fmt: skip
    merged: dict[int, Item] = {}
    for name, status in parts:
        read = queue.items(status, need, 0, queue=name, scheduled=when, newest_first=newest_first)
        for item in read:
            merged.setdefault(item.id, item)  # a job that moved between two reads: once
    ordered = sorted(merged.values(), key=lambda item: item.id, reverse=newest_first)
    return ordered[offset:need]


def _queues_in_scope(stats: Stats, scope: str | None, own: str) -> list[QueueStats]:
    if scope is not None:
        return [stats.queues[scope]] if scope in stats.queues else []
    # stats() always lists the Queue's own name; hide it when it is empty and others are not.
    shown = [qs for qs in stats.queues.values() if qs.total or qs.queue != own]
    return shown or list(stats.queues.values())[:1]


COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("queue", "queue"),
    ("status", "status"),
    ("age", "age"),
    ("tries", "tries"),
    ("error", "last error"),
    ("payload", "payload"),
    ("worker", "worker"),
    ("lease", "lease"),
    ("priority", "pri"),
)
"""The items table's columns after the marker column: (key, header). The error comes before the
payload: on a narrow terminal it is the payload that goes past the right edge."""


def job_row(item: Item, now: float, *, show_queue: bool = True) -> JobRow:
    """The cells of one job's row, every value from the job rendered inert."""
    lease = ""
    if item.status == Status.IN_PROGRESS and item.lease_expires_at is not None:
        left = item.lease_expires_at.timestamp() - now
        lease = span(left) if left > 0 else "expired"
    status = Text(STATUS_LABEL[item.status], style=STATUS_STYLE[item.status])
    age = span(now - item.created_at.timestamp())
    wait = item.available_at.timestamp() - now
    if item.status == Status.READY and wait > 0:  # delayed or backing off
        status = Text(SCHEDULED_LABEL, style=SCHEDULED_STYLE)
        age = until(wait)
    cells = {
        "id": Text(str(item.id), justify="right"),
        "queue": inert(item.queue, limit=16),
        "status": status,
        "age": Text(age, justify="right"),
        "tries": Text(f"{item.attempts}/{item.max_attempts}", justify="right"),
        "worker": inert(identity.short(item.worker), limit=24),
        "lease": Text(lease, style="red" if lease == "expired" else "", justify="right"),
        "priority": Text(str(item.priority), justify="right"),
        "payload": inert(payload_text(item.payload)[: PREVIEW * 4], limit=PREVIEW),
        "error": inert(error_line(item.last_error), limit=ERROR_PREVIEW),
    }
    if not show_queue:
        cells.pop("queue")
    cells["error"].stylize("red")
    cells = {key: cells[key] for key, _ in COLUMNS if key in cells}  # in the table's order
    return JobRow(item.id, item.status, tuple(cells.values()), item)


_STATUS_ORDER = {status: n for n, status in enumerate(Status)}


def sort_key(item: Item, column: str) -> Any:
    """What a job sorts by in `column`, or None when it has nothing there."""
    value: Any
    if column == "status":
        value = _STATUS_ORDER[item.status]
    elif column == "age":
        value = -item.created_at.timestamp()  # older is more
    elif column == "tries":
        value = (item.attempts, -item.max_attempts)  # then the closest to running out
    elif column == "priority":
        value = item.priority
    elif column == "queue":
        value = item.queue
    elif column == "worker":
        value = item.worker or None
    elif column == "lease":
        lease = item.lease_expires_at if item.status == Status.IN_PROGRESS else None
        value = None if lease is None else lease.timestamp()
    elif column == "error":
        value = error_line(item.last_error) or None
    elif column == "payload":
        value = payload_text(item.payload)[:PREVIEW]
    else:
        value = item.id
    return value
