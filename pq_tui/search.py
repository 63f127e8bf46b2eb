"""A text search over a big store, read one window of ids at a time.

A substring match has no index to use: asked for a page at once, the store scans until the
page is full, and over a million jobs with few matches that takes seconds before anything
shows. So the store thread reads `SEARCH_WINDOW` ids at a time (`items(..., id_range=)`, a
bounded read of the primary key), newest first (or oldest first), shows the first page as soon
as it is filled, and counts the matches window by window: the count is a lower bound while
the scan goes on, exact when it ends. Each window is a request of its own, so the operator's
other requests go between two windows, and a new view drops the scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pq_core import Item, Queue
from pq_tui.snapshot import View

SEARCH_WINDOW = 50_000  # ids per bounded read (tests lower it to make a small store need several)
CLUSTER_GAP = 1_000  # a refresh re-reads the page's jobs in runs of ids this close together


def scannable(view: View) -> bool:
    """Whether `view` is a text search read window by window: its first page, in id order
    (an error group is one indexed read; scheduled jobs come in another order)."""
    return bool(view.search) and view.error is None and not view.scheduled and not view.offset


@dataclass(eq=False)
class Scan:
    """One search's progress: the ids it spans (`low`..`high`, the store's ids when it began),
    where the next window starts, the page found so far and the matches counted so far."""

    view: View
    low: int
    high: int
    next: int
    found: list[Item] = field(default_factory=list)
    matches: int = 0
    done: bool = False
    uncounted: tuple[int, int] | None = None  # the window that filled the page, counted next
    queued: bool = False  # a step of it waits in the store thread's queue

    def window(self, width: int) -> tuple[int, int]:
        if self.view.newest_first:
            return (max(self.next - width + 1, self.low), self.next)
        return (self.next, min(self.next + width - 1, self.high))


def start(queue: Queue, view: View) -> Scan:
    """A new scan over every id the store holds now (two reads of the primary key's ends)."""
    newest = queue.items(None, 1, queue=None)
    oldest = queue.items(None, 1, queue=None, newest_first=False)
    if not newest or not oldest:
        return Scan(view, 1, 0, 0, done=True)
    low, high = oldest[0].id, newest[0].id
    return Scan(view, low, high, high if view.newest_first else low)


def step(queue: Queue, scan: Scan, page: int, width: int | None = None) -> None:
    """Read the scan's next window: its matches while the page is not full, and its count.
    The window that fills the page is counted by the next step, so the page is shown first."""
    view = scan.view
    where = {"queue": view.scope, "search": view.search, "scheduled": view.scheduled}
    if scan.uncounted is not None:
        scan.matches += queue.count(view.status, id_range=scan.uncounted, **where)
        scan.uncounted = None
        scan.done = _past_the_end(scan)
        return
    lo, hi = scan.window(width or SEARCH_WINDOW)
    want = page - len(scan.found)
    if want > 0:
        got = queue.items(
            view.status, want, newest_first=view.newest_first, id_range=(lo, hi), **where
        )
        scan.found.extend(got)
        if len(got) < want:
            scan.matches += len(got)
        else:
            scan.uncounted = (lo, hi)
    else:
        scan.matches += queue.count(view.status, id_range=(lo, hi), **where)
    scan.next = lo - 1 if view.newest_first else hi + 1
    scan.done = _past_the_end(scan)


def _past_the_end(scan: Scan) -> bool:
    if scan.uncounted is not None:
        return False
    return scan.next < scan.low if scan.view.newest_first else scan.next > scan.high


def reread(queue: Queue, scan: Scan, page: int) -> None:
    """Bring a finished scan up to date, in bounded reads: the jobs put since it began (read
    and counted), and the page's jobs as they are now (a job deleted, or no longer matching
    the status filter, leaves the page and the count). Jobs beyond the page that changed
    since are not seen until the search is made again."""
    view = scan.view
    where = {"queue": view.scope, "search": view.search, "scheduled": view.scheduled}
    order = {"newest_first": view.newest_first}
    top = queue.items(None, 1, queue=None)
    newer: list[Item] = []
    if top and top[0].id > scan.high:
        span = (scan.high + 1, top[0].id)
        scan.high = top[0].id
        n = queue.count(view.status, id_range=span, **where)
        scan.matches += n
        if n:
            newer = queue.items(view.status, page, id_range=span, **where, **order)
    ids = sorted(item.id for item in scan.found)
    fresh: list[Item] = []
    run_from = 0
    for n, job in enumerate(ids):
        if n + 1 == len(ids) or ids[n + 1] - job > CLUSTER_GAP:
            span = (ids[run_from], job)
            fresh += queue.items(view.status, page, id_range=span, **where, **order)
            run_from = n + 1
    scan.matches += len(fresh) - len(scan.found)
    fresh.sort(key=lambda item: item.id, reverse=view.newest_first)
    found = newer + fresh if view.newest_first else fresh + newer
    scan.found = found[:page]
