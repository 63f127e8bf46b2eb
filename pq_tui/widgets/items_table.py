"""The jobs table: one fetched window of jobs, updated in place by row key.

A refresh changes only the cells that changed, adds and removes rows by job id and re-sorts,
then puts the cursor back on the job it was on, at the same height on screen, so neither the
cursor nor the marks jump when jobs come and go around them.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from pq_tui.snapshot import COLUMNS, JobRow

MARK = "●"
_MARK_COLUMN = "mark"
# Fixed widths keep columns from jumping as rows change; payload and error share the rest.
_FIXED_WIDTHS = {
    "id": 8,
    "queue": 10,
    "status": 11,
    "age": 6,
    "tries": 5,
    "worker": 18,
    "lease": 10,
    "priority": 3,
}
_SHARED = ("payload", "error")  # these two share what the other columns leave
REBUILD_AFTER = 10  # rows leaving in one refresh above which the table is rebuilt


class ItemsTable(DataTable):
    """Jobs of the current view; keys are job ids, the first column shows marks."""

    def __init__(self, *, show_queue: bool = True, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.show_queue = show_queue
        self._shown: tuple[Sequence[JobRow], set[int], bool, bool] = ((), set(), True, False)
        self._fitted_width = 0
        self.placed_row = 0  # where the last refresh put the cursor (the operator did not)

    def on_mount(self) -> None:
        self.add_column(Text(" "), key=_MARK_COLUMN, width=1)
        for key, header in COLUMNS:
            if key == "queue" and not self.show_queue:
                continue
            self.add_column(Text(header), key=key, width=_FIXED_WIDTHS.get(key))

    def on_resize(self, event: events.Resize) -> None:
        rows, marks, newest_first, follow_top = self._shown
        if rows and event.size.width != self._fitted_width:
            self.show(rows, marks, newest_first, follow_top=follow_top)

    def _budget(self, rows: Sequence[JobRow]) -> dict[int, int]:
        """How wide the payload and error cells may be, by column index, so that the whole
        row fits the table's width. Errors get what the longest one needs, up to two fifths;
        payloads get the rest. Each keeps a minimum: a narrow terminal scrolls sideways."""
        columns = self.ordered_columns
        shared = [i for i, c in enumerate(columns) if c.key.value in _SHARED]
        used = sum(c.get_render_width(self) for c in columns if c.key.value not in _SHARED)
        # Room for the vertical scrollbar is kept whether it shows or not, so that the widths
        # do not depend on how many rows the last refresh brought.
        inner = self.content_region.width - self.styles.scrollbar_size_vertical
        free = inner - used - 2 * self.cell_padding * len(shared)
        longest = max((row.cells[shared[1] - 1].cell_len for row in rows), default=0)
        error = min(max(longest, len("last error")), free * 2 // 5)
        payload = max(free - error, 24)
        return {shared[0]: payload, shared[1]: max(free - payload, 10)}

    @property
    def highlighted_id(self) -> int | None:
        """The id of the job under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor is between updates
            return None
        return None if key.value is None else int(key.value)

    def visible_ids(self) -> list[int]:
        return [int(row.key.value) for row in self.ordered_rows if row.key.value is not None]

    def show(
        self,
        rows: Sequence[JobRow],
        marks: set[int],
        newest_first: bool,
        *,
        new_view: bool = False,
        follow_top: bool = False,
    ) -> None:
        """Make the table hold exactly `rows`, in order, touching only what changed. The cursor
        stays on its job; if that job is gone it stays at its height, or with `new_view` (the
        operator changed the filter) it goes to the top. With `follow_top` (the operator has
        not moved it yet) it stays on the first row, like `tail -f`."""
        self._shown = (rows, marks, newest_first, follow_top)
        self._fitted_width = self.size.width
        budget = self._budget(rows)
        keep_id = self.highlighted_id
        old_index = self.cursor_row
        on_screen = old_index - round(self.scroll_y)
        # At the top, the view stays at the top: new jobs show up above the cursor's job.
        # Scrolled down, the cursor's job keeps its height on screen while rows come and go.
        hold = self.scroll_y > 0 and not new_view
        rows = list({r.id: r for r in rows}.values())  # one row per job, whatever came in
        wanted = {str(r.id): r for r in rows}
        gone = [k for k in self.rows if k.value not in wanted]
        if len(gone) > REBUILD_AFTER:
            # The window moved: most rows are new, and DataTable removes rows one by one in
            # O(rows) each. Starting over is cheaper; the cursor is put back by job below.
            self.clear()
        else:
            for key in gone:
                self.remove_row(key)
        present = {k.value for k in self.rows}
        for row in rows:
            key = str(row.id)
            cells = [self._mark_cell(row.id in marks), *row.cells]
            for index, width in budget.items():
                if cells[index].cell_len > width:
                    cells[index] = cells[index].copy()
                    cells[index].truncate(width, overflow="ellipsis")
            if key in present:
                self._update_row(key, cells)
            else:
                self.add_row(*cells, key=key)
        order = [str(r.id) for r in rows]
        if [r.key.value for r in self.ordered_rows] != order:
            self.sort("id", key=lambda cell: int(cell.plain), reverse=newest_first)
        if not rows:
            self.placed_row = 0
            return
        new_index = 0 if new_view else min(old_index, len(rows) - 1)
        if follow_top:
            keep_id = None
            new_index = 0
            hold = False
            if self.scroll_y:
                self.call_after_refresh(self.scroll_to, y=0, animate=False, immediate=True)
        if keep_id is not None:
            try:
                new_index = self.get_row_index(str(keep_id))
            except RowDoesNotExist:
                pass
        if new_index != self.cursor_row:
            self.move_cursor(row=new_index, scroll=False)
        if new_index != old_index and hold:
            self.call_after_refresh(self._hold_on_screen, new_index, on_screen)
        self.placed_row = new_index

    def _hold_on_screen(self, index: int, on_screen: int) -> None:
        self.scroll_to(y=max(index - on_screen, 0), animate=False, immediate=True)

    def _update_row(self, key: str, cells: Sequence[Text]) -> None:
        current = self.get_row(key)
        columns = self.ordered_columns
        for column, old, new in zip(columns, current, cells, strict=True):
            if old != new:
                self.update_cell(key, column.key, new, update_width=True)

    def set_mark(self, job_id: int, marked: bool) -> None:
        try:
            self.update_cell(str(job_id), _MARK_COLUMN, self._mark_cell(marked))
        except Exception:  # the job left the window meanwhile
            pass

    @staticmethod
    def _mark_cell(marked: bool) -> Text:
        return Text(MARK, style="bold magenta") if marked else Text(" ")
