"""A screen over the dashboard that lists what the store says about groups of jobs (error
groups, queues), one row each, kept live; `enter` answers the dashboard with the row's key.
Opened again, it shows the rows it showed last time at once ("updating…") until the store
answers: grouping every failed job by error takes the store ~100 ms at 1,000,000 jobs.

The rows are read on the store thread (`read`, a pq_core call) and drawn here (`cells`); the
cursor stays on its row's key across refreshes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer
from textual.widgets.data_table import RowDoesNotExist

from pq_core import Queue, QueueError
from pq_tui import actions
from pq_tui.display import inert
from pq_tui.messages import ActionDone, Listed

if TYPE_CHECKING:
    from pq_tui.app import PqApp


class ListTable(DataTable):
    """The listing's table. `enter` pressed before the first rows came is kept: the row the
    cursor lands on is picked once they are drawn (a quick `Q` `enter` is not lost)."""

    def action_select_cursor(self) -> None:
        screen = self.screen
        if not self.row_count and isinstance(screen, ListScreen) and not screen.reads:
            screen.choose_when_read = True
            return
        super().action_select_cursor()


class ListScreen(Screen[Any]):
    """One row per thing; subclasses say what is read, how a row looks and what `enter` picks.
    Dismissed with the row's key (`enter`), or None (`esc`)."""

    ACTIONS: ClassVar[tuple[actions.Action, ...]] = ()
    COLUMNS: ClassVar[tuple[tuple[str, bool], ...]] = ()  # (header, right-justified)
    TITLE_TEXT = ""

    def __init__(self, scope: str | None, *, id: str) -> None:
        super().__init__(id=id)
        self.scope = scope  # the dashboard's queue, or None for every queue
        self.rows: tuple[Any, ...] = ()
        self.reads = 0  # answers applied (tests wait on it)
        self.error = ""
        self._reading = False
        self.choose_when_read = False  # enter came before the first rows

    @property
    def pq(self) -> PqApp:
        return self.app  # type: ignore[return-value]

    # -- what a subclass says ----------------------------------------------------------------

    def read(self, queue: Queue) -> Sequence[Any]:
        raise NotImplementedError

    def key(self, row: Any) -> str:
        raise NotImplementedError

    def cells(self, row: Any, now: float) -> Sequence[Text]:
        raise NotImplementedError

    def subtitle(self) -> Text:
        return Text("enter picks · esc back")

    def drawn(self) -> None:
        """Called after new rows are drawn. (Not an on_listed of a subclass: Textual calls
        the handler of every class in the MRO, so it would run twice.)"""

    # -- composition and reading -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ListTable(id="list", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Footer).compact = self.app.size.width < 120
        table = self.table
        for header, right in self.COLUMNS:
            table.add_column(Text(header, justify="right" if right else "left"), key=header)
        table.border_title = Text(self.TITLE_TEXT, style="bold")
        table.border_subtitle = Text("reading…", style="dim")
        table.focus()
        cached = self.pq.listed.get(self._cache_key)
        if cached is not None:  # what it showed last time, at once, until the store answers
            self.rows = cached
            self._draw()
            self.drawn()
            sub = self.subtitle()
            sub.append(" · updating…", style="dim")
            table.border_subtitle = sub
        self.reread()
        if self.pq.refresh_every > 0:
            self.set_interval(self.pq.refresh_every, self.reread)

    @property
    def _cache_key(self) -> tuple[str, str | None]:
        return (type(self).__name__, self.scope)

    @property
    def table(self) -> DataTable:
        return self.query_one("#list", DataTable)

    def reread(self) -> None:
        if self._reading:
            return
        self._reading = True

        def read(queue: Queue) -> Listed:
            try:
                return Listed(tuple(self.read(queue)))
            except QueueError as exc:
                return Listed((), str(exc))
            except Exception as exc:  # answered all the same: the screen waits for an answer
                return Listed((), f"unexpected error: {exc!r}")

        self.pq.store.submit(read, self)

    def on_listed(self, message: Listed) -> None:
        self._reading = False
        self.error = message.error
        if not message.error:
            self.rows = message.rows
            self.pq.listed[self._cache_key] = message.rows
            self._draw()
            self.drawn()
        if self.choose_when_read:
            self.choose_when_read = False
            if self.rows:
                self.action_choose()
                return
        self.reads += 1
        sub = self.subtitle()
        if self.error:
            sub = inert(self.error, limit=100)
            sub.stylize("red")
        self.table.border_subtitle = sub
        self.refresh_bindings()

    def _draw(self) -> None:
        table, now = self.table, self.pq.clock()
        keep = self.highlighted
        table.clear()
        for row in self.rows:
            table.add_row(*self.cells(row, now), key=self.key(row))
        if keep is not None:
            try:
                table.move_cursor(row=table.get_row_index(keep), scroll=False)
            except RowDoesNotExist:
                pass

    @property
    def highlighted(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # between updates
            return None
        return key.value

    def row_of(self, key: str | None) -> Any:
        return next((r for r in self.rows if self.key(r) == key), None)

    # -- keys --------------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#list")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_choose(self) -> None:
        key = self.highlighted
        if key is None:
            self.app.bell()
            return
        self.dismiss(key)

    def action_move(self, step: int) -> None:
        if int(step) > 0:
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()

    def action_jump(self, first: bool) -> None:
        table = self.table
        table.move_cursor(row=0 if first else max(table.row_count - 1, 0))

    def action_close(self) -> None:
        self.dismiss(None)

    def on_action_done(self, message: ActionDone) -> None:
        severity = "error" if message.failed else "information"
        self.notify(message.text, severity=severity, markup=False)
        self.reread()
