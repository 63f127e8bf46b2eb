"""The dashboard's one thread that talks to the store (memray's TUI has its UpdateThread).

Every store call runs here, one at a time and in the order asked: refreshes, reading a job,
dry-run counts and the operator's changes. Answers go back as messages (`pq_tui.messages`) to
the screen that asked, so the UI never waits on the store, not even on one that is locked.
The queue's connection belongs to this thread and is closed when it stops.
"""

from __future__ import annotations

import os
import queue as queue_module
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from textual.message import Message
from textual.message_pump import MessagePump

from pq_core import ItemNotFound, Queue, QueueError, Status, StoreLocked
from pq_tui import operations, search
from pq_tui.messages import (
    ActionDone,
    JobRead,
    MatchCounted,
    PurgeCounted,
    Refreshed,
    RefreshFailed,
)
from pq_tui.snapshot import PAGE, Snapshot, View, job_row, take

Request = Callable[[Queue], Message | None]
SLOW_REFRESH = 0.2  # seconds; a refresh slower than this spaces out the periodic ones
SEARCH_SHOW_EVERY = 0.25  # seconds between a search's partial counts on screen


class StoreThread(threading.Thread):
    """Serves store requests in order. `scope` is the queue name the dashboard shows, or None
    for every queue; `path`, the store's file, is watched: removed or replaced by another file,
    it is reported as a store error (the open store would go on reading the old file)."""

    def __init__(
        self,
        queue: Queue,
        clock: Callable[[], float],
        *,
        scope: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(name="pq-store", daemon=True)
        self.queue = queue
        self.clock = clock
        self.scope = scope
        self.path = path
        self._file_id = _file_id(path) if path is not None else None
        self._requests: queue_module.SimpleQueue[tuple[Request, MessagePump] | None] = (
            queue_module.SimpleQueue()
        )
        self._submitted = 0  # requests handed over (a search's next window: by this thread)
        self._submit_lock = threading.Lock()
        self._finished = 0  # requests served (written by this thread only)
        self._wanted: tuple[View, MessagePump] | None = None
        self._fetch_queued = False
        self._quiet_until = 0.0  # no periodic refresh before then
        self._purge_wanted: tuple[MessagePump, Status, str, str | None] | None = None
        self._purge_queued = False
        self._scan: search.Scan | None = None  # the text search being read, window by window
        self._scan_base: Snapshot | None = None  # its last snapshot
        self._scan_shown = 0.0

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                entry = self._requests.get()
                if entry is None:
                    return
                request, reply_to = entry
                try:
                    answer = request(self.queue)
                except Exception as exc:  # a bug must not silently stop every refresh
                    answer = ActionDone(f"unexpected error: {exc!r}", failed=True)
                finally:
                    self._finished += 1
                if answer is not None:
                    reply_to.post_message(answer)
        finally:
            self.queue.close()  # this thread's connection

    def stop(self) -> None:
        """Finish the request being served, then stop (what is still queued is dropped)."""
        self._requests.put(None)

    def submit(self, request: Request, reply_to: MessagePump) -> None:
        """Run `request(queue)` here; the message it returns is posted to `reply_to`."""
        with self._submit_lock:
            self._submitted += 1
        self._requests.put((request, reply_to))

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def idle(self) -> bool:
        """Whether every request handed over has been served."""
        return self._finished >= self._submitted

    # -- refreshes ---------------------------------------------------------------------------

    def refresh(self, view: View, reply_to: MessagePump) -> None:
        """Ask for a snapshot of `view`. At most one waits at a time: a newer view asked for
        before it is served replaces the older one."""
        self._wanted = (view, reply_to)  # before the flag: see _fetch
        scan = self._scan
        if scan is not None and scan.view != view:
            self._scan = None  # a new view: the search being read stops at its next window
        if self._fetch_queued:
            return
        self._fetch_queued = True
        self.submit(self._fetch, reply_to)

    @property
    def due(self) -> bool:
        """Whether a periodic refresh may go now. On a store slow to answer (a text filter
        over millions of jobs) it waits twice as long as the last refresh took, so this thread
        keeps time for the operator's own requests."""
        return time.monotonic() >= self._quiet_until

    def _fetch(self, queue: Queue) -> Message | None:
        # Clear the flag before reading the view: a view asked for after this point queues
        # another fetch, one asked for before is read here.
        self._fetch_queued = False
        wanted = self._wanted
        if wanted is None:
            return None
        view, reply_to = wanted
        started = time.monotonic()
        try:
            if search.scannable(view):
                snapshot = self._search(queue, view, reply_to)
            else:
                self._scan = None
                snapshot = take(queue, view, view.scope, self.clock, show_queue=self.scope is None)
        except StoreLocked as exc:
            return RefreshFailed(str(exc), busy=True)
        except QueueError as exc:
            return RefreshFailed(str(exc), busy=False)
        except Exception as exc:  # shown like a store error: as an action's, it would refresh again
            return RefreshFailed(f"unexpected error: {exc!r}", busy=False)
        finally:
            took = time.monotonic() - started
            self._quiet_until = time.monotonic() + (2 * took if took > SLOW_REFRESH else 0)
        if self.path is not None and _file_id(self.path) != self._file_id:
            return RefreshFailed(
                "the store file was removed or replaced: restart pq-tui", busy=False
            )
        return Refreshed(snapshot)

    # -- a text search, window by window ----------------------------------------------------

    def _search(self, queue: Queue, view: View, reply_to: MessagePump) -> Snapshot:
        """A snapshot of a text search: a new one reads its first window at once and goes on
        window by window (`_scan_step`); one already read is brought up to date."""
        scan = self._scan
        if scan is None or scan.view != view:
            scan = self._scan = search.start(queue, view)
            if not scan.done:
                search.step(queue, scan, PAGE)
        elif scan.done:
            search.reread(queue, scan, PAGE)
        snapshot = take(
            queue, view, view.scope, self.clock, show_queue=self.scope is None,
            items=list(scan.found),
        )  # fmt: skip
        snapshot = replace(snapshot, matches=scan.matches, searching=not scan.done)
        self._scan_base, self._scan_shown = snapshot, time.monotonic()
        self._next_window(scan, reply_to)
        return snapshot

    def _next_window(self, scan: search.Scan, reply_to: MessagePump) -> None:
        if scan.done or scan.queued:
            return
        scan.queued = True
        self.submit(lambda queue: self._scan_step(queue, scan, reply_to), reply_to)

    def _scan_step(self, queue: Queue, scan: search.Scan, reply_to: MessagePump) -> Message | None:
        scan.queued = False
        if self._scan is not scan:
            return None  # another view was asked for: this search stops
        before = [item.id for item in scan.found]
        try:
            search.step(queue, scan, PAGE)
        except StoreLocked as exc:
            self._next_window(scan, reply_to)  # the same window again, after what waits
            return RefreshFailed(str(exc), busy=True)
        except QueueError as exc:
            self._scan = None
            return RefreshFailed(str(exc), busy=False)
        self._next_window(scan, reply_to)
        base = self._scan_base
        changed = [item.id for item in scan.found] != before
        due = time.monotonic() - self._scan_shown >= SEARCH_SHOW_EVERY
        if base is None or base.view != scan.view or not (changed or due or scan.done):
            return None
        now = self.clock()
        rows = tuple(job_row(item, now, show_queue=self.scope is None) for item in scan.found)
        snapshot = replace(
            base, rows=rows, items=tuple(scan.found), matches=scan.matches,
            searching=not scan.done, taken_at=now,
        )  # fmt: skip
        self._scan_base, self._scan_shown = snapshot, time.monotonic()
        return Refreshed(snapshot)

    # -- single reads ------------------------------------------------------------------------

    def read_job(self, job_id: int, reply_to: MessagePump) -> None:
        """Read one job with its history; answers JobRead (item None when it is gone)."""

        def read(queue: Queue) -> Message:
            try:
                return JobRead(job_id, queue.item(job_id))
            except ItemNotFound:
                return JobRead(job_id, None, f"job {job_id} no longer exists", missing=True)
            except QueueError as exc:
                return JobRead(job_id, None, str(exc))
            except Exception as exc:  # answered all the same: the screen waits for an answer
                return JobRead(job_id, None, f"unexpected error: {exc!r}")

        self.submit(read, reply_to)

    def count_purge(
        self, reply_to: MessagePump, status: Status, older_than: str, scope: str | None
    ) -> None:
        """Count what a purge of `scope` (a queue, or None: every queue) would remove. While
        the operator types, only the latest choice is counted: a count can take a while on a
        big store."""
        self._purge_wanted = (reply_to, status, older_than, scope)  # before the flag, as in refresh
        if not self._purge_queued:
            self._purge_queued = True
            self.submit(self._count_latest_purge, reply_to)

    def _count_latest_purge(self, queue: Queue) -> None:
        self._purge_queued = False
        wanted = self._purge_wanted
        if wanted is None:
            return
        reply_to, status, older_than, scope = wanted
        if not reply_to.is_attached:
            return  # the dialog was closed meanwhile
        try:
            n = queue.purge(older_than or 0, status, queue=scope, dry_run=True)
        except QueueError as exc:
            reply_to.post_message(PurgeCounted(status, older_than, None, str(exc)))
        except Exception as exc:  # the dialog waits for an answer: give it one
            error = f"unexpected error: {exc!r}"
            reply_to.post_message(PurgeCounted(status, older_than, None, error))
        else:
            reply_to.post_message(PurgeCounted(status, older_than, n))

    def count_matching(self, kind: str, view: View, reply_to: MessagePump) -> None:
        """Count what a bulk `kind` ("requeue", "delete") on everything `view` shows would
        change; answers MatchCounted."""

        def count(queue: Queue) -> Message:
            try:
                n = operations.count_matching(queue, kind, view)
            except QueueError as exc:
                return MatchCounted(kind, view, None, str(exc))
            except Exception as exc:  # answered all the same: the screen waits for an answer
                return MatchCounted(kind, view, None, f"unexpected error: {exc!r}")
            return MatchCounted(kind, view, n)

        self.submit(count, reply_to)

    # -- changes -----------------------------------------------------------------------------

    def change(
        self,
        title: str,
        run: Callable[[Queue], int],
        report: Callable[[int], str],
        reply_to: MessagePump,
    ) -> None:
        """Make a change to the store and report what it did (or why it failed)."""

        def request(queue: Queue) -> Message:
            try:
                n = run(queue)
            except QueueError as exc:
                return ActionDone(f"{title} failed: {exc}", failed=True, kind=title)
            return ActionDone(report(n), kind=title)

        self.submit(request, reply_to)


def _file_id(path: str) -> tuple[int, int] | None:
    """Which file is at `path` (device and inode), or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
