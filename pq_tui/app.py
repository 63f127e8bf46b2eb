"""The dashboard App: composition, key bindings, refresh scheduling and the operator's actions.

Every store call runs on one background thread (a Textual thread worker) that serves requests
in order: refreshes, job lookups, dry-run counts and the actions themselves. Its answers come
back as messages, so the UI never waits on the store, not even on one that is locked. A refresh
posts an immutable `Snapshot`; while a dialog is open it is held back and shown when the dialog
closes, so nothing moves under the operator's hand.
"""

from __future__ import annotations

import os
import queue as queue_module
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input
from textual.worker import get_current_worker

from pq_core import Item, ItemNotFound, Queue, QueueError, Status, StoreLocked, identity
from pq_tui.display import STATUS_LABEL, ago, count, inert, plural
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.detail import DetailScreen
from pq_tui.screens.help import HelpScreen
from pq_tui.screens.purge import PurgeChoice, PurgeScreen
from pq_tui.snapshot import PAGE, Snapshot, View, take
from pq_tui.widgets.activity import ActivityLog
from pq_tui.widgets.items_table import ItemsTable
from pq_tui.widgets.status_bar import StatusBar
from pq_tui.widgets.summary import Summary
from pq_tui.widgets.workers import WorkersPanel

FILTERS = Binding.Group("filter", compact=True)
STATUS_KEYS: dict[str, Status | None] = {
    "all": None,
    "ready": Status.READY,
    "in_progress": Status.IN_PROGRESS,
    "done": Status.DONE,
    "dead": Status.DEAD,
}
WRITE_ACTIONS = {"mark", "requeue", "delete", "purge"}
EDGE = 3  # rows from either end of the window at which the window moves on
MAX_IDS_SHOWN = 10


class Refreshed(Message):
    """A snapshot is ready."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class RefreshFailed(Message):
    """A refresh could not read the store; `busy` when it was locked past the busy timeout."""

    def __init__(self, error: str, busy: bool) -> None:
        super().__init__()
        self.error = error
        self.busy = busy


class Opened(Message):
    """A job was read for the detail screen."""

    def __init__(self, item: Item) -> None:
        super().__init__()
        self.item = item


class ActionDone(Message):
    """An action finished: what to tell the operator, and whether it failed."""

    def __init__(self, text: str, failed: bool = False) -> None:
        super().__init__()
        self.text = text
        self.failed = failed


class PqApp(App[None]):
    """The pq operations dashboard for one store.

    `queue` is the pq_core Queue to read and act through, `clock` gives "now" in epoch seconds
    (ages and leases are shown relative to it). `scope` is the queue name to show, or None for
    every queue in the store. `source` names the store in the top line. `path`, the store's
    file, is watched: removed or replaced by another file, it is shown as a store error (the
    open store would go on reading the old file as if nothing happened)."""

    CSS_PATH = "app.tcss"
    TITLE = "pq-tui"

    BINDINGS = [
        Binding("1", "show('all')", "all", group=FILTERS),
        Binding("2", "show('ready')", "ready", group=FILTERS),
        Binding("3", "show('in_progress')", "in progress", group=FILTERS),
        Binding("4", "show('done')", "done", group=FILTERS),
        Binding("5", "show('dead')", "dead", group=FILTERS),
        Binding("slash", "search", "Search"),
        Binding("enter", "open_job", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("r", "requeue", "Requeue"),
        Binding("d", "delete", "Delete"),
        Binding("p", "purge", "Purge"),
        Binding("s", "sort", "Order", show=False),
        Binding("g", "jump(True)", "First", show=False),
        Binding("G", "jump(False)", "Last", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        queue: Queue,
        clock: Callable[[], float] = time.time,
        *,
        scope: str | None = None,
        source: str = "",
        read_only: bool = False,
        refresh_every: float = 1.0,
        actor: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self._file_id = _file_id(path) if path is not None else None
        self.queue = queue
        self.clock = clock
        self.scope = scope
        self.source = source or repr(queue)
        self.read_only = read_only
        self.refresh_every = refresh_every
        self.actor = actor or f"pq-tui {identity.user()}"
        self.view = View()
        self.snapshot: Snapshot | None = None
        self.marks: dict[int, Status] = {}
        self.following = True  # the cursor follows the first job until the operator moves it
        self.refreshes = 0  # snapshots applied so far (tests and the benchmark wait on it)
        self.store_error: str | None = None
        self.stale_since: float | None = None
        self._held: Snapshot | None = None
        self._requests: queue_module.SimpleQueue[Callable[[], None] | None] = (
            queue_module.SimpleQueue()
        )
        self._fetch_queued = False
        self._quiet_until = 0.0  # no periodic refresh before then (written by the store thread)
        self._purge_wanted: tuple[PurgeScreen, Status, str] | None = None
        self._purge_queued = False
        self._keys_state: tuple[bool | None, ...] = ()
        self._submitted = 0  # requests handed to the store thread (written by the UI thread)
        self._finished = 0  # requests it has finished (written by the store thread)

    # -- composition -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Summary(id="summary")
        with Vertical(id="jobs"):
            yield Input(placeholder="filter jobs by text (enter applies, esc closes)", id="search")
            yield ItemsTable(show_queue=self.scope is None, id="items")
        with Horizontal(id="bottom"):
            with VerticalScroll(id="activity-box") as box:
                box.border_title = "activity"
                yield ActivityLog(id="activity")
            with VerticalScroll(id="workers-box") as box:
                box.border_title = "workers"
                yield WorkersPanel(id="workers")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#activity-box").can_focus = False
        self.query_one("#workers-box").can_focus = False
        search = self.query_one("#search", Input)
        search.display = False
        search.cursor_blink = not self.is_headless  # a still cursor in tests and pictures
        self._serve_store()
        self.screen_change_signal.subscribe(self, self._screen_changed)
        if self.refresh_every > 0:
            self.set_interval(self.refresh_every, self._tick)
        self._show_titles()
        self._show_state()
        self.table.focus()
        self.request_refresh()

    def on_resize(self, event: events.Resize) -> None:
        # A short terminal gives the jobs table the rows the bottom panels would take.
        self.screen_stack[0].set_class(event.size.height < 34, "-short")
        footer = self.screen_stack[0].query_one(Footer)
        footer.compact = event.size.width < 120
        footer.show_command_palette = event.size.width >= 100
        if self.snapshot is not None:
            self.query_one(Summary).show(self.snapshot)  # the sparkline's length follows the width

    def on_unmount(self) -> None:
        self._requests.put(None)

    @property
    def table(self) -> ItemsTable:
        return self.query_one("#items", ItemsTable)

    # -- the store thread --------------------------------------------------------------------

    @work(thread=True, name="store", exit_on_error=False)
    def _serve_store(self) -> None:
        """Run store requests one at a time, in order, off the UI thread."""
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                try:
                    request = self._requests.get(timeout=0.25)
                except queue_module.Empty:
                    continue
                if request is None:
                    return
                try:
                    request()
                except Exception as exc:  # a bug must not silently stop every refresh
                    self.post_message(ActionDone(f"unexpected error: {exc!r}", failed=True))
                finally:
                    self._finished += 1
        finally:
            self.queue.close()  # this thread's connection

    def _submit(self, request: Callable[[], None]) -> None:
        self._submitted += 1
        self._requests.put(request)

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def store_idle(self) -> bool:
        """Whether every request handed to the store thread has been served."""
        return self._finished >= self._submitted

    def request_refresh(self) -> None:
        """Ask for a new snapshot of the current view (at most one waits at a time)."""
        if self._fetch_queued:
            return
        self._fetch_queued = True
        self._submit(self._fetch)

    def _tick(self) -> None:
        """The periodic refresh. On a store slow to answer (a text filter over millions of
        jobs) it waits twice as long as the last refresh took, so the store thread keeps time
        for the operator's own requests."""
        if time.monotonic() >= self._quiet_until:
            self.request_refresh()

    def _fetch(self) -> None:
        self._fetch_queued = False  # before reading the view: a later change queues another
        view = self.view
        started = time.monotonic()
        try:
            snapshot = take(self.queue, view, self.scope, self.clock, show_queue=self.scope is None)
        except StoreLocked as exc:
            self.post_message(RefreshFailed(str(exc), busy=True))
        except QueueError as exc:
            self.post_message(RefreshFailed(str(exc), busy=False))
        except Exception as exc:  # shown like a store error: as an action's, it would refresh again
            self.post_message(RefreshFailed(f"unexpected error: {exc!r}", busy=False))
        else:
            if self.path is not None and _file_id(self.path) != self._file_id:
                gone = "the store file was removed or replaced: restart pq-tui"
                self.post_message(RefreshFailed(gone, busy=False))
            else:
                self.post_message(Refreshed(snapshot))
        finally:
            took = time.monotonic() - started
            self._quiet_until = time.monotonic() + (2 * took if took > 0.2 else 0)

    # -- applying snapshots ------------------------------------------------------------------

    @property
    def dialog_open(self) -> bool:
        return len(self.screen_stack) > 1

    def on_refreshed(self, message: Refreshed) -> None:
        if message.snapshot.view != self.view:
            self.request_refresh()  # the operator moved on; the newer view is on its way
            return
        if self.dialog_open:
            self._held = message.snapshot
            return
        self._apply(message.snapshot)

    def _screen_changed(self, screen: Screen) -> None:
        if not self.dialog_open and self._held is not None:
            held, self._held = self._held, None
            if held.view == self.view:
                self._apply(held)
            self.request_refresh()

    def _apply(self, snapshot: Snapshot) -> None:
        self.store_error = None
        self.stale_since = None
        for row in snapshot.rows:
            if row.id in self.marks:
                self.marks[row.id] = row.status
        before = self.snapshot.view if self.snapshot is not None else snapshot.view
        new_view = replace(before, offset=0) != replace(snapshot.view, offset=0)
        self.snapshot = snapshot
        self.table.show(
            snapshot.rows,
            set(self.marks),
            snapshot.view.newest_first,
            new_view=new_view,
            follow_top=self.following and snapshot.view.offset == 0,
        )
        self.query_one(Summary).show(snapshot)
        self.query_one(ActivityLog).show(snapshot)
        self.query_one(WorkersPanel).show(snapshot)
        self._show_titles()
        self._show_state()
        self._update_keys()
        self.refreshes += 1

    def on_refresh_failed(self, message: RefreshFailed) -> None:
        if self.stale_since is None:
            self.stale_since = self.snapshot.taken_at if self.snapshot else None
        self.store_error = message.error if not message.busy else "store busy"
        self._show_state()

    def _show_state(self) -> None:
        if self.store_error is not None:
            state = Text(
                "● store busy" if self.store_error == "store busy" else "● store error",
                style="bold red",
            )
            if self.snapshot is not None:
                state.append(
                    f" · showing data from {ago(self.snapshot.taken_at, self.clock())}",
                    style="red",
                )
            if self.store_error != "store busy":
                state.append(" · ")
                state.append_text(inert(self.store_error, limit=80))
        elif self.snapshot is None:
            state = Text("loading…", style="dim")
        else:
            state = Text("● live", style="bold green")
            state.append(f" · every {self.refresh_every:g}s", style="dim")
        self.query_one(StatusBar).show(self.source, self.scope, self.read_only, state)

    def _show_titles(self) -> None:
        view = self.view
        what = "all jobs" if view.status is None else f"{STATUS_LABEL[view.status]} jobs"
        title = Text(what, style="bold")
        if view.search:
            title.append(" matching ")
            title.append_text(inert(repr(view.search), limit=40))
        title.append(" · newest first" if view.newest_first else " · oldest first")
        table = self.table
        table.border_title = title
        snapshot = self.snapshot
        sub = Text()
        if snapshot is not None and snapshot.view == view:
            shown = len(snapshot.rows)
            if shown == 0:
                filtered = view.status is not None or view.search
                sub.append("no matching jobs" if filtered else "no jobs yet")
            else:
                first, last = view.offset + 1, view.offset + shown
                sub.append(f"{count(first)}–{count(last)}")
                if snapshot.total is not None:
                    sub.append(f" of {count(snapshot.total)}")
                elif snapshot.more_after:
                    sub.append(" of more")
        if self.marks:
            sub.append(" · ")
            sub.append(f"{count(len(self.marks))} marked", style="bold magenta")
        table.border_subtitle = sub

    # -- following the cursor through the store ---------------------------------------------

    @on(DataTable.RowHighlighted, "#items")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_keys()
        snapshot = self.snapshot
        if snapshot is None or snapshot.view != self.view:
            return  # a move is already on its way
        # The message may be older than the last update of the table: read the cursor now.
        index, rows = self.table.cursor_row, self.table.row_count
        if index == self.table.placed_row:
            return  # a refresh moved the cursor along with its job: the operator did not
        self.table.placed_row = -1  # the operator moves it from here on
        self.following = False
        offset = self.view.offset
        if index >= rows - EDGE and snapshot.more_after:
            offset = offset + index - PAGE // 4
        elif index < EDGE and offset > 0:
            offset = max(offset + index - (PAGE * 3) // 4, 0)
        else:
            return
        self.view = replace(self.view, offset=offset)
        self.request_refresh()

    @on(DataTable.RowSelected, "#items")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_job()

    # -- which keys apply --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.read_only:
            return False  # hidden, and refused
        if action in ("open_job", "mark", "delete"):
            return True if self._highlighted() is not None else None
        if action == "requeue":
            targets = self._target_statuses()
            return True if any(s != Status.READY for s in targets.values()) else None
        return True

    def _update_keys(self) -> None:
        """Redraw the footer's keys, but only when one of them changed between enabled and
        disabled: redrawing it on every cursor move would cost more than the move."""
        state = tuple(self.check_action(a, ()) for a in ("open_job", "mark", "requeue", "delete"))
        if state != self._keys_state:
            self._keys_state = state
            self.refresh_bindings()

    def _highlighted(self) -> int | None:
        try:
            return self.table.highlighted_id
        except NoMatches:
            return None

    def _target_statuses(self) -> dict[int, Status]:
        """The jobs an action applies to: the marked ones, else the highlighted one."""
        if self.marks:
            return dict(self.marks)
        job_id = self._highlighted()
        if job_id is None or self.snapshot is None:
            return {}
        status = next((r.status for r in self.snapshot.rows if r.id == job_id), None)
        return {} if status is None else {job_id: status}

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Show all jobs", "Filter: every status (key 1)", "show('all')"),
            ("Show ready jobs", "Filter: ready (key 2)", "show('ready')"),
            ("Show in-progress jobs", "Filter: in progress (key 3)", "show('in_progress')"),
            ("Show done jobs", "Filter: done (key 4)", "show('done')"),
            ("Show dead jobs", "Filter: dead (key 5)", "show('dead')"),
            ("Filter by text", "Payload, error, worker or id (key /)", "search"),
            ("Newest / oldest first", "Reverse the order of jobs (key s)", "sort"),
            ("Open job", "Whole payload and history of the highlighted job (enter)", "open_job"),
            ("Mark job", "Mark or unmark the highlighted job (space)", "mark"),
            ("Requeue jobs", "Put the marked or highlighted jobs back to ready (r)", "requeue"),
            ("Delete jobs", "Remove the marked or highlighted jobs for good (d)", "delete"),
            ("Purge jobs", "Remove done or dead jobs older than an age (p)", "purge"),
            ("Clear marks and filter", "Unmark every job and drop the text filter (esc)", "clear"),
            ("Help", "Every key (?)", "help"),
        ]
        for title, help_text, action in commands:
            name, _, args = action.partition("(")
            params = (args.rstrip(")").strip("'"),) if args else ()
            if self.check_action(name, params):
                yield SystemCommand(title, help_text, self._runner(action))

    def _runner(self, action: str) -> Callable[[], object]:
        return lambda: self.run_action(action)

    # -- view actions ------------------------------------------------------------------------

    def action_show(self, status: str) -> None:
        self._set_view(status=STATUS_KEYS[status])

    def action_sort(self) -> None:
        self._set_view(newest_first=not self.view.newest_first)

    def action_jump(self, first: bool) -> None:
        self.following = first
        if first:
            if self.view.offset:
                self._set_view(offset=0, keep_marks=True)
            self.table.move_cursor(row=0)
            return
        snapshot = self.snapshot
        if snapshot is not None and snapshot.total is not None and snapshot.more_after:
            self._set_view(offset=max(snapshot.total - PAGE, 0), keep_marks=True)
        self.table.move_cursor(row=self.table.row_count - 1)

    def _set_view(self, *, keep_marks: bool = False, offset: int = 0, **changes: object) -> None:
        view = replace(self.view, offset=offset, **changes)
        if view == self.view:
            return
        if not keep_marks:
            self.marks.clear()
        self.view = view
        self._show_titles()
        self.request_refresh()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.value = self.view.search
        search.display = True
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_search()
        self._set_view(search=event.value.strip())

    def _close_search(self) -> None:
        self.query_one("#search", Input).display = False
        self.table.focus()

    def action_clear(self) -> None:
        if self.query_one("#search", Input).has_focus:
            self._close_search()
            return
        if self.marks:
            self.marks.clear()
            self._redraw_marks()
        elif self.view.search:
            self._set_view(search="")

    def action_mark(self) -> None:
        if self.read_only:
            return
        job_id = self._highlighted()
        if job_id is None or self.snapshot is None:
            return
        if job_id in self.marks:
            del self.marks[job_id]
        else:
            status = next((r.status for r in self.snapshot.rows if r.id == job_id), None)
            if status is None:
                return
            self.marks[job_id] = status
        self.following = False
        self.table.set_mark(job_id, job_id in self.marks)
        self.table.action_cursor_down()
        self._show_titles()
        self._update_keys()

    def _redraw_marks(self) -> None:
        for job_id in self.table.visible_ids():
            self.table.set_mark(job_id, job_id in self.marks)
        self._show_titles()
        self._update_keys()

    def action_open_job(self) -> None:
        job_id = self._highlighted()
        if job_id is None:
            return

        def read() -> None:
            try:
                self.post_message(Opened(self.queue.item(job_id)))
            except ItemNotFound:
                self.post_message(ActionDone(f"job {job_id} no longer exists", failed=True))
            except QueueError as exc:
                self.post_message(ActionDone(str(exc), failed=True))

        self._submit(read)

    def on_opened(self, message: Opened) -> None:
        if not self.dialog_open:
            self.push_screen(DetailScreen(message.item, self.clock()))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.read_only))

    # -- actions that change the store -------------------------------------------------------

    def action_requeue(self) -> None:
        targets = self._target_statuses()
        ids = sorted(i for i, s in targets.items() if s != Status.READY)
        if self.read_only or not ids:
            self._refuse("requeue")
            return
        question = Text.assemble(
            "Put ",
            (plural(len(ids), "job"), "bold"),
            " back to ready, with attempts reset?\n",
            (_id_list(ids), "dim"),
        )
        self._confirm(
            "requeue",
            question,
            "Requeue",
            lambda: self.queue.requeue(ids, actor=self.actor),
            lambda n: f"requeued {plural(n, 'job')}",
        )

    def action_delete(self) -> None:
        ids = sorted(self._target_statuses())
        if self.read_only or not ids:
            self._refuse("delete")
            return
        question = Text.assemble(
            "Delete ",
            (plural(len(ids), "job"), "bold"),
            " for good? This cannot be undone.\n",
            (_id_list(ids), "dim"),
        )
        self._confirm(
            "delete",
            question,
            "Delete",
            lambda: self.queue.delete(ids, actor=self.actor),
            lambda n: f"deleted {plural(n, 'job')}",
        )

    def action_purge(self) -> None:
        if self.read_only:
            self._refuse("purge")
            return
        where = "in every queue" if self.scope is None else f"in queue {self.scope}"
        self.push_screen(PurgeScreen(where, self._count_purge), self._purge_chosen)

    def _count_purge(self, screen: PurgeScreen, status: Status, older_than: str) -> None:
        """Count what a purge would remove, on the store thread. While the operator types,
        only the latest choice is counted: a count can take a while on a big store."""
        self._purge_wanted = (screen, status, older_than)  # before the flag: see below
        if not self._purge_queued:
            self._purge_queued = True
            self._submit(self._count_latest_purge)

    def _count_latest_purge(self) -> None:
        # Clear the flag before reading the choice (as _fetch does with the view): a choice
        # made after this point queues another count, one made before is read here.
        self._purge_queued = False
        wanted = self._purge_wanted
        if wanted is None:
            return
        screen, status, older_than = wanted
        if not screen.is_attached:
            return  # the dialog was closed meanwhile
        try:
            n = self.queue.purge(
                older_than or 0, status, queue=self.scope, dry_run=True, actor=self.actor
            )
        except QueueError as exc:
            screen.post_message(PurgeScreen.Counted(status, older_than, None, str(exc)))
        else:
            screen.post_message(PurgeScreen.Counted(status, older_than, n))

    def _purge_chosen(self, choice: PurgeChoice | None) -> None:
        if choice is None:
            return
        where = "every queue" if self.scope is None else f"queue {self.scope}"
        question = Text.assemble(
            "Remove ",
            (plural(choice.count, f"{choice.status.value} job"), "bold"),
            f" last changed more than {choice.older_than or '0s'} ago, from {where}?"
            "\nThis cannot be undone.",
        )
        self._confirm(
            "purge",
            question,
            "Purge",
            lambda: self.queue.purge(
                choice.older_than or 0, choice.status, queue=self.scope, actor=self.actor
            ),
            lambda n: f"purged {plural(n, f'{choice.status.value} job')}",
        )

    def _confirm(
        self,
        title: str,
        question: Text,
        label: str,
        change: Callable[[], int],
        report: Callable[[int], str],
    ) -> None:
        """Ask, then make the change on the store thread and report what it did."""

        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def run() -> None:
                try:
                    n = change()
                except QueueError as exc:
                    self.post_message(ActionDone(f"{title} failed: {exc}", failed=True))
                else:
                    self.post_message(ActionDone(report(n)))

            self._submit(run)

        self.push_screen(ConfirmScreen(title, question, label), answered)

    def on_action_done(self, message: ActionDone) -> None:
        if not message.failed:
            self.marks.clear()
            self._redraw_marks()
        self.notify(
            message.text, severity="error" if message.failed else "information", markup=False
        )
        self.request_refresh()

    def _refuse(self, what: str) -> None:
        if self.read_only:
            self.notify(f"read-only: {what} is off", severity="warning", markup=False)
        else:
            self.bell()

    async def action_quit(self) -> None:
        self.exit()


def _file_id(path: str) -> tuple[int, int] | None:
    """Which file is at `path` (device and inode), or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _id_list(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return f"ids {shown}" + (f" and {more} more" if more > 0 else "")
