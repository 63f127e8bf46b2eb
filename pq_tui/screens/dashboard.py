"""The dashboard screen: summary, jobs table, activity and workers, and the keys over them.

It keeps what the operator is looking at (the View: status filter, text filter, order, window),
asks the App's store thread for snapshots of it, and applies them by diffing rows by job id, so
the cursor and marks stay on their jobs. While anything covers it (a dialog, help, a job's
detail) a new snapshot is held back and shown when it is uncovered, so nothing moves under the
operator's hand.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input

from pq_core import Item, Status
from pq_tui import actions, operations
from pq_tui.display import STATUS_LABEL, ago, clip, count, inert, payload_text, plural
from pq_tui.messages import (
    ActionDone,
    JobRead,
    MatchCounted,
    PurgeCounted,
    Refreshed,
    RefreshFailed,
)
from pq_tui.screens.detail import DetailScreen
from pq_tui.screens.errors import ErrorsScreen
from pq_tui.screens.help import HelpScreen
from pq_tui.screens.purge import DEFAULT_AGE, PURGEABLE, PurgeChoice, PurgeScreen
from pq_tui.screens.queues import EVERY_QUEUE, QueuesScreen
from pq_tui.snapshot import COLUMNS, PAGE, JobRow, Snapshot, View, sort_key
from pq_tui.widgets.activity import ActivityLog
from pq_tui.widgets.items_table import ItemsTable
from pq_tui.widgets.status_bar import StatusBar
from pq_tui.widgets.summary import Summary
from pq_tui.widgets.workers import WorkersPanel

if TYPE_CHECKING:
    from pq_tui.app import PqApp

STATUS_KEYS: dict[str, tuple[Status | None, bool | None]] = {  # (status, scheduled)
    "all": (None, None),
    "ready": (Status.READY, False),  # available now
    "in_progress": (Status.IN_PROGRESS, None),
    "done": (Status.DONE, None),
    "dead": (Status.DEAD, None),
    "scheduled": (Status.READY, True),  # ready, but not before a later time
}
EDGE = 3  # rows from either end of the window at which the window moves on
SHORT = 28  # terminals with fewer rows start zoomed: the jobs table alone
LOW = 34  # terminals with fewer rows get lower bottom panels
NARROW = 100  # terminals with fewer columns get the summary in two lines (its table won't fit)
WRITES = actions.writes(actions.DASHBOARD)


def matches(n: int) -> str:
    return f"{count(n)} match" if n == 1 else f"{count(n)} matches"


class DashboardScreen(Screen[None]):
    """The main screen. Its keys are the `actions.DASHBOARD` table."""

    ACTIONS = actions.DASHBOARD
    BINDINGS = actions.bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.view = View(scope=self.pq.scope)
        self.snapshot: Snapshot | None = None
        self.marks: dict[int, Status] = {}
        self.following = True  # the cursor follows the first job until the operator moves it
        self.refreshes = 0  # snapshots applied so far (tests and the benchmark wait on it)
        self.store_error: str | None = None
        self.stale_since: float | None = None
        self.sort_column = "id"  # "id" is the store's order; any other sorts the loaded rows
        self.sort_descending = True  # for columns other than id (id follows view.newest_first)
        self.zoom_choice: bool | None = None  # the operator's z; None: by terminal height
        self._held: Snapshot | None = None
        self._keys_state: tuple[bool | None, ...] = ()

    @property
    def pq(self) -> PqApp:
        return self.app  # type: ignore[return-value]

    # -- composition -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Summary(id="summary")
        with Vertical(id="jobs"):
            yield Input(placeholder="filter jobs by text (enter applies, esc closes)", id="search")
            yield ItemsTable(show_queue=self.pq.scope is None, id="items")
        with Horizontal(id="bottom"):
            with VerticalScroll(id="activity-box") as box:
                box.border_title = "activity"
                yield ActivityLog(id="activity")
            with VerticalScroll(id="workers-box") as box:
                box.border_title = "workers · done: last min"
                yield WorkersPanel(id="workers")
        yield Footer()

    def on_mount(self) -> None:
        search = self.query_one("#search", Input)
        search.display = False
        search.cursor_blink = not self.app.is_headless  # a still cursor in tests and pictures
        if self.pq.refresh_every > 0:
            self.set_interval(self.pq.refresh_every, self._tick)
        self.fit(self.app.size.width, self.app.size.height)
        self._show_titles()
        self._show_state()
        self.table.focus()
        self.request_refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width, event.size.height)

    def fit(self, width: int, height: int) -> None:
        """Lay the panels out for a terminal of this size."""
        self.set_class(height < LOW, "-low")
        self._zoom(self.zoomed)
        footer = self.query_one(Footer)
        footer.compact = width < 120
        footer.show_command_palette = width >= 100

    @property
    def zoomed(self) -> bool:
        """Whether the jobs table is alone: the operator's choice, else a short terminal."""
        if self.zoom_choice is not None:
            return self.zoom_choice
        return self.app.size.height < SHORT

    def _zoom(self, zoomed: bool) -> None:
        self.set_class(zoomed, "-zoomed")
        bottom = self.query_one("#bottom")
        if zoomed and bottom.has_focus_within:
            self.table.focus()
        summary = self.query_one(Summary)
        summary.compact = zoomed or self.app.size.width < NARROW
        if self.snapshot is not None:
            summary.show(self.snapshot)

    @property
    def table(self) -> ItemsTable:
        return self.query_one("#items", ItemsTable)

    # -- refreshes ---------------------------------------------------------------------------

    def request_refresh(self) -> None:
        """Ask the store thread for a new snapshot of the current view."""
        self.pq.store.refresh(self.view, self)

    def _tick(self) -> None:
        if self.pq.store.due:
            self.request_refresh()

    @property
    def covered(self) -> bool:
        return self.app.screen is not self

    def on_refreshed(self, message: Refreshed) -> None:
        if message.snapshot.view != self.view:
            self.request_refresh()  # the operator moved on; the newer view is on its way
            return
        if self.covered:
            self._held = message.snapshot
            return
        self._apply(message.snapshot)

    def on_screen_resume(self) -> None:
        self.fit(self.app.size.width, self.app.size.height)  # resized while covered
        if self._held is not None:
            held, self._held = self._held, None
            if held.view == self.view:
                self._apply(held)
        if self.snapshot is not None:
            self.request_refresh()  # whatever was done meanwhile (a job deleted in its detail)

    def _apply(self, snapshot: Snapshot) -> None:
        self.store_error = None
        self.stale_since = None
        for row in snapshot.rows:
            if row.id in self.marks:
                self.marks[row.id] = row.status
        before = self.snapshot.view if self.snapshot is not None else snapshot.view
        new_view = replace(before, offset=0) != replace(snapshot.view, offset=0)
        self.snapshot = snapshot
        self._show_rows(new_view=new_view)
        self.query_one(Summary).show(snapshot)
        self.query_one(ActivityLog).show(snapshot)
        self.query_one(WorkersPanel).show(snapshot)
        self._show_titles()
        self._show_state()
        self._update_keys()
        self.refreshes += 1

    def _show_rows(self, *, new_view: bool = False) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            return
        if self.table.touched:
            self.table.touched = False
            self.following = False
        self.table.show(
            self._ordered(snapshot.rows),
            set(self.marks),
            new_view=new_view,
            follow_top=self.following and snapshot.view.offset == 0,
        )
        if self.sort_column == "id" and snapshot.view.scheduled:
            self.table.show_sort("age", False)  # soonest first: the store's order for them
        else:
            self.table.show_sort(self.sort_column, self._descending)

    def _ordered(self, rows: tuple[JobRow, ...]) -> list[JobRow]:
        """The rows in the order the operator chose. By id they come from the store in order;
        by another column the loaded rows are sorted here, ties by id, newest first."""
        if self.sort_column == "id":
            return list(rows)
        column = self.sort_column
        by_id = sorted(rows, key=lambda r: r.id, reverse=True)
        keyed = [(sort_key(r.item, column), r) for r in by_id]
        present = [pair for pair in keyed if pair[0] is not None]
        present.sort(key=lambda pair: pair[0], reverse=self.sort_descending)  # stable: ties by id
        return [r for _, r in present] + [r for key, r in keyed if key is None]

    @property
    def _descending(self) -> bool:
        return self.view.newest_first if self.sort_column == "id" else self.sort_descending

    def on_refresh_failed(self, message: RefreshFailed) -> None:
        if self.stale_since is None:
            self.stale_since = self.snapshot.taken_at if self.snapshot else None
        self.store_error = message.error if not message.busy else "store busy"
        self._show_state()

    def _show_state(self) -> None:
        if self.store_error is not None:
            busy = self.store_error == "store busy"
            state = Text("● store busy" if busy else "● store error", style="bold red")
            if self.snapshot is not None:
                when = ago(self.snapshot.taken_at, self.pq.clock())
                state.append(f" · showing data from {when}", style="red")
            if not busy:
                state.append(" · ")
                state.append_text(inert(self.store_error, limit=80))
        elif self.snapshot is None:
            state = Text("loading…", style="dim")
        else:
            state = Text("● live", style="bold green")
            state.append(f" · every {self.pq.refresh_every:g}s", style="dim")
        self.query_one(StatusBar).show(self.pq.source, self.view.scope, self.pq.read_only, state)

    def _show_titles(self) -> None:
        view = self.view
        what = "all jobs" if view.status is None else f"{STATUS_LABEL[view.status]} jobs"
        if view.scheduled is not None:
            what = "scheduled jobs" if view.scheduled else "ready jobs, available now"
        title = Text(what, style="bold")
        if view.error is not None:
            title.append(" with error ")
            title.append_text(inert(clip(view.error, 60)))
            title.stylize("red", len(what))
        if view.search:
            title.append(" matching ")
            title.append_text(inert(repr(view.search), limit=40))
        snapshot = self.snapshot
        if self.sort_column == "id" and view.scheduled:
            title.append(" · soonest first")
        elif self.sort_column == "id":
            title.append(" · newest first" if view.newest_first else " · oldest first")
        else:
            header = dict(COLUMNS)[self.sort_column]
            title.append(f" · by {header} {'↓' if self.sort_descending else '↑'}")
            if snapshot is not None and (snapshot.more_after or view.offset):
                title.append(f", the {len(snapshot.rows)} loaded", style="yellow")
        table = self.table
        table.border_title = title
        sub = Text()
        if snapshot is not None and snapshot.view == view:
            shown = len(snapshot.rows)
            if shown == 0 and snapshot.searching:
                pass  # said below
            elif shown == 0:
                filtered = view.status is not None or view.search or view.error is not None
                sub.append("no matching jobs" if filtered else "no jobs yet")
            else:
                first, last = view.offset + 1, view.offset + shown
                sub.append(f"{count(first)}–{count(last)}")
                if snapshot.total is not None:
                    sub.append(f" of {count(snapshot.total)}")
                elif snapshot.matches is not None and not snapshot.searching:
                    sub.append(f" of {matches(snapshot.matches)}")
                elif snapshot.more_after and snapshot.matches is None:
                    sub.append(" of more")
            if snapshot.searching:
                sub.append(" · " if shown else "")
                sub.append(f"≥ {matches(snapshot.matches or 0)}, searching…")
                sub.stylize("yellow", len(sub) - len("searching…"))
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
        if self.sort_column != "id":
            return  # sorted by another column, the window stays: the order is its own
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
        if action in WRITES and self.pq.read_only:
            return False  # hidden, and refused
        if action in ("open_job", "mark", "delete", "copy"):
            return True if self._highlighted() is not None else None
        if action == "requeue":
            targets = self._target_statuses()
            return True if any(s != Status.READY for s in targets.values()) else None
        if action == "bulk":
            kind = str(parameters[0]) if parameters else "delete"
            return True if operations.matching_filter(kind, self.view) is not None else None
        if action == "toggle_pause":
            return True if self.view.scope is not None else None
        if action == "run_now":
            targets = self._target_statuses()
            return True if any(s == Status.READY for s in targets.values()) else None
        return True

    def _update_keys(self) -> None:
        """Redraw the footer's keys, but only when one of them changed between enabled and
        disabled: redrawing it on every cursor move would cost more than the move."""
        names = ("open_job", "mark", "requeue", "delete", "copy", "run_now", "toggle_pause")
        state = tuple(self.check_action(a, ()) for a in names)
        state += (self.check_action("bulk", ("requeue",)),)
        if state != self._keys_state:
            self._keys_state = state
            self.refresh_bindings()

    def _highlighted(self) -> int | None:
        try:
            return self.table.highlighted_id
        except NoMatches:
            return None

    def _highlighted_item(self) -> Item | None:
        job_id = self._highlighted()
        if job_id is None or self.snapshot is None:
            return None
        return next((r.item for r in self.snapshot.rows if r.id == job_id), None)

    def _target_statuses(self) -> dict[int, Status]:
        """The jobs an action applies to: the marked ones, else the highlighted one."""
        if self.marks:
            return dict(self.marks)
        item = self._highlighted_item()
        return {} if item is None else {item.id: item.status}

    # -- view actions ------------------------------------------------------------------------

    def action_show(self, status: str) -> None:
        wanted, scheduled = STATUS_KEYS[status]
        self._set_view(status=wanted, scheduled=scheduled)

    def action_reverse(self) -> None:
        if self.sort_column == "id":
            self._set_view(newest_first=not self.view.newest_first, keep_marks=True)
        else:
            self.sort_descending = not self.sort_descending
            self._resort()

    def action_sort_by(self, step: int) -> None:
        keys = [key for key, _ in COLUMNS if key != "queue" or self.pq.scope is None]
        index = keys.index(self.sort_column) if self.sort_column in keys else 0
        self.sort_column = keys[(index + int(step)) % len(keys)]
        self.sort_descending = self.sort_column != "status"  # dead first is ↑ in status order
        if self.sort_column == "id" and self.view.offset:
            self._set_view(offset=0, keep_marks=True)
        self._resort()

    def _resort(self) -> None:
        self._show_rows()
        self._show_titles()
        self._update_keys()  # another job may be under the cursor now

    def action_zoom(self) -> None:
        self.zoom_choice = not self.zoomed
        self._zoom(self.zoom_choice)

    def action_jump(self, first: bool) -> None:
        focused = self.focused
        if isinstance(focused, VerticalScroll):
            if first:
                focused.scroll_home(animate=False)
            else:
                focused.scroll_end(animate=False)
            return
        self.following = first
        self.table.touched = False
        if first:
            if self.view.offset:
                self._set_view(offset=0, keep_marks=True)
            self.table.move_cursor(row=0)
            return
        snapshot = self.snapshot
        if (
            self.sort_column == "id"
            and snapshot is not None
            and snapshot.total is not None
            and snapshot.more_after
        ):
            self._set_view(offset=max(snapshot.total - PAGE, 0), keep_marks=True)
        self.table.move_cursor(row=self.table.row_count - 1)

    def action_move(self, step: int) -> None:
        focused = self.focused
        if isinstance(focused, VerticalScroll):
            focused.scroll_relative(y=step, animate=False)
        elif step > 0:
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()

    def action_sideways(self, step: int) -> None:
        if step > 0:
            self.table.action_scroll_right()
        else:
            self.table.action_scroll_left()

    def action_half_page(self, direction: int) -> None:
        focused: Widget | None = self.focused
        if isinstance(focused, VerticalScroll):
            focused.scroll_relative(y=direction * max(focused.size.height // 2, 1), animate=False)
            return
        table = self.table
        self.following = False
        rows = max((table.scrollable_content_region.height - 1) // 2, 1)
        target = min(max(table.cursor_row + direction * rows, 0), max(table.row_count - 1, 0))
        table.move_cursor(row=target)

    def _set_view(self, *, keep_marks: bool = False, offset: int = 0, **changes: Any) -> None:
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
        """Escape: closes the search box if it is open; otherwise undoes one thing per press,
        the nearest first: the marks, the text filter, the error group, the status filter,
        then the queue the dashboard was scoped to (as the help says)."""
        if self.query_one("#search", Input).has_focus:
            self._close_search()
            return
        view = self.view
        if self.marks:
            self.marks.clear()
            self._redraw_marks()
        elif view.search:
            self._set_view(search="")
        elif view.error is not None:
            self._set_view(error=None)
        elif view.status is not None or view.scheduled is not None:
            self._set_view(status=None, scheduled=None)
        elif view.scope is not None and self.pq.scope is None:
            self._set_view(scope=None)  # every queue again (not when opened with --queue)

    def action_mark(self) -> None:
        if self.pq.read_only:
            return
        item = self._highlighted_item()
        if item is None:
            return
        if item.id in self.marks:
            del self.marks[item.id]
        else:
            self.marks[item.id] = item.status
        self.following = False
        self.table.set_mark(item.id, item.id in self.marks)
        self.table.action_cursor_down()
        self._show_titles()
        self._update_keys()

    def action_mark_all(self) -> None:
        """Mark every job shown in the table (the loaded window)."""
        if self.pq.read_only or self.snapshot is None:
            return
        for row in self.snapshot.rows:
            self.marks[row.id] = row.status
        self.following = False
        self._redraw_marks()

    def action_invert_marks(self) -> None:
        """Marked jobs shown are unmarked, the others shown marked."""
        if self.pq.read_only or self.snapshot is None:
            return
        for row in self.snapshot.rows:
            if row.id in self.marks:
                del self.marks[row.id]
            else:
                self.marks[row.id] = row.status
        self.following = False
        self._redraw_marks()

    def _redraw_marks(self) -> None:
        for job_id in self.table.visible_ids():
            self.table.set_mark(job_id, job_id in self.marks)
        self._show_titles()
        self._update_keys()

    def action_copy(self, what: str) -> None:
        """y: the marked jobs' ids, else the highlighted job's id; Y: its whole payload."""
        if what == "id":
            ids = sorted(self.marks) if self.marks else []
            if not ids and (job_id := self._highlighted()) is not None:
                ids = [job_id]
            if not ids:
                self.app.bell()
                return
            self.app.copy_to_clipboard(" ".join(str(i) for i in ids))
            shown = operations.id_list(ids).replace("ids ", "", 1)
            self.notify(f"copied {plural(len(ids), 'job id')}: {shown}", markup=False)
            return
        item = self._highlighted_item()
        if item is None:
            self.app.bell()
            return
        text = payload_text(item.payload)
        self.app.copy_to_clipboard(text)
        self.notify(
            f"copied the payload of job {item.id} ({plural(len(text), 'character')})",
            markup=False,
        )

    def action_open_job(self) -> None:
        job_id = self._highlighted()
        if job_id is not None:
            self.pq.store.read_job(job_id, self)

    def on_job_read(self, message: JobRead) -> None:
        if message.item is None:
            self.notify(message.error, severity="error", markup=False)
            if message.missing:
                self.request_refresh()
        elif not self.covered:
            self.app.push_screen(DetailScreen(message.item))

    def action_errors(self) -> None:
        self.app.push_screen(ErrorsScreen(self.view.scope), self._group_chosen)

    def _group_chosen(self, signature: str | None) -> None:
        """Show the jobs of one error group: its failed (backing off) and dead jobs."""
        if signature is not None:
            self._set_view(error=signature, status=None, scheduled=None, search="")

    def action_queues(self) -> None:
        screen = QueuesScreen(self.view.scope, fixed=self.pq.scope)
        self.app.push_screen(screen, self._queue_chosen)

    def _queue_chosen(self, name: str | None) -> None:
        """Show one queue (or, EVERY_QUEUE, every queue again) on the whole dashboard."""
        if name is None:
            return
        scope = None if name == EVERY_QUEUE else name
        if self.pq.scope is not None:
            scope = self.pq.scope  # opened on one queue (--queue): that one only
        self._set_view(scope=scope)

    def action_toggle_pause(self) -> None:
        """P: pause the queue shown, or resume it (on every queue, the queues view says which)."""
        scope = self.view.scope
        if self.pq.read_only or scope is None:
            self._refuse("pause")
            return
        paused = any(qs.paused for qs in self.snapshot.queues) if self.snapshot else False
        change = operations.pause(scope, not paused, self.pq.actor)
        self.pq.store.change(change.title, change.run, change.report, self)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.pq.read_only))

    # -- actions that change the store -------------------------------------------------------

    def action_requeue(self) -> None:
        targets = self._target_statuses()
        ids = [i for i, s in targets.items() if s != Status.READY]
        if self.pq.read_only or not ids:
            self._refuse("requeue")
            return
        self.pq.confirm(operations.requeue(ids, self.pq.actor), self)

    def action_delete(self) -> None:
        ids = list(self._target_statuses())
        if self.pq.read_only or not ids:
            self._refuse("delete")
            return
        self.pq.confirm(operations.delete(ids, self.pq.actor), self)

    def action_run_now(self) -> None:
        """Make the scheduled (delayed or backing-off) jobs among the targets available now.
        Nothing is lost or undone by it, so it asks nothing."""
        targets = self._target_statuses()
        ids = sorted(i for i, s in targets.items() if s == Status.READY)
        if self.pq.read_only or not ids:
            self._refuse("run now")
            return
        change = operations.run_now(ids, self.pq.actor)
        self.pq.store.change(change.title, change.run, change.report, self)

    def action_bulk(self, kind: str) -> None:
        """R / D: every job matching the view (filter, text, error group, queue), counted
        exactly before the question."""
        if self.pq.read_only or operations.matching_filter(kind, self.view) is None:
            self._refuse(f"{kind} all")
            return
        self.pq.store.count_matching(kind, self.view, self)

    def on_match_counted(self, message: MatchCounted) -> None:
        if message.view != self.view or self.covered:
            return  # the operator moved on meanwhile
        if message.count is None:
            self.notify(message.error, severity="error", markup=False)
        elif message.count == 0:
            self.notify(f"no jobs to {message.kind} here", markup=False)
        else:
            change = operations.bulk(message.kind, message.view, message.count, self.pq.actor)
            self.pq.confirm(change, self)

    def action_purge(self) -> None:
        if self.pq.read_only:
            self._refuse("purge")
            return
        scope = self.view.scope
        where = "in every queue" if scope is None else f"in queue {scope}"
        # The first choice is counted while the dialog is drawn, not after.
        self.pq.store.count_purge(self, PURGEABLE[0], DEFAULT_AGE, scope)
        self.app.push_screen(PurgeScreen(where, scope, asked=True), self._purge_chosen)

    def on_purge_counted(self, message: PurgeCounted) -> None:
        screen = self.app.screen
        if isinstance(screen, PurgeScreen):
            screen.counted(message)

    def _purge_chosen(self, choice: PurgeChoice | None) -> None:
        if choice is None:
            return
        change = operations.purge(
            choice.status, choice.older_than, choice.count, self.view.scope, self.pq.actor
        )
        self.pq.confirm(change, self)

    def on_action_done(self, message: ActionDone) -> None:
        if not message.failed:
            self.marks.clear()
            self._redraw_marks()
        severity = "error" if message.failed else "information"
        self.notify(message.text, severity=severity, markup=False)
        self.request_refresh()

    def _refuse(self, what: str) -> None:
        if self.pq.read_only:
            self.notify(f"read-only: {what} is off", severity="warning", markup=False)
        else:
            self.app.bell()
