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
    "id": 7,
    "queue": 10,
    "status": 11,
    "age": 6,
    "tries": 6,
    "worker": 16,
    "lease": 7,
    "priority": 4,
}
ERROR_MAX = 80  # an error wider than this is cut; the detail view has it whole
ERROR_SQUEEZED = 40  # when all columns fit only with the error cut, it keeps at least this
PAYLOAD_MIN = 16
REBUILD_AFTER = 10  # rows leaving in one refresh above which the table is rebuilt


class ItemsTable(DataTable):
    """Jobs of the current view; keys are job ids, the first column shows marks."""

    def __init__(self, *, show_queue: bool = True, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.show_queue = show_queue
        self._shown: tuple[Sequence[JobRow], set[int], bool] = ((), set(), False)
        self._fitted_width = 0
        self.placed_row = 0  # where the last refresh put the cursor (the operator did not)
        self.touched = False  # the operator moved the cursor since the dashboard last looked

    def on_mount(self) -> None:
        self.add_column(Text(" "), key=_MARK_COLUMN, width=1)
        for key, header in COLUMNS:
            if key == "queue" and not self.show_queue:
                continue
            self.add_column(Text(header), key=key, width=_FIXED_WIDTHS.get(key))

    # The operator's moves, noted as they happen: a refresh that lands before the move's
    # RowHighlighted message must not put the cursor back on the newest job.
    def action_cursor_down(self) -> None:
        self.touched = True
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        self.touched = True
        super().action_cursor_up()

    def action_page_down(self) -> None:
        self.touched = True
        super().action_page_down()

    def action_page_up(self) -> None:
        self.touched = True
        super().action_page_up()

    def action_scroll_bottom(self) -> None:
        self.touched = True
        super().action_scroll_bottom()

    def on_resize(self, event: events.Resize) -> None:
        rows, marks, follow_top = self._shown
        if rows and event.size.width != self._fitted_width:
            self.show(rows, marks, follow_top=follow_top)

    def _budget(self, rows: Sequence[JobRow]) -> dict[int, int]:
        """How wide the error and payload cells may be, by column index. The error gets its
        room first (as much as the longest one shown needs), the payload what is left:
        - everything fits: the error as wide as it needs, the payload the rest;
        - it fits only if the error is cut: the error is cut (to no less than ERROR_SQUEEZED),
          the payload keeps PAYLOAD_MIN;
        - a narrow terminal: the error takes the width up to the right edge and the payload
          and the columns after it go past it (the table scrolls sideways)."""
        columns = self.ordered_columns
        keys = [c.key.value for c in columns]
        error_at, payload_at = keys.index("error"), keys.index("payload")
        pad = 2 * self.cell_padding
        # Room for the vertical scrollbar is kept whether it shows or not, so that the widths
        # do not depend on how many rows the last refresh brought.
        inner = self.content_region.width - self.styles.scrollbar_size_vertical
        fixed = [c.get_render_width(self) for c in columns]  # with padding
        free_all = inner - sum(w for i, w in enumerate(fixed) if i not in (error_at, payload_at))
        free_all -= 2 * pad
        longest = max((row.cells[error_at - 1].cell_len for row in rows), default=0)
        want = min(max(longest, len("last error")), ERROR_MAX)
        if free_all >= want + PAYLOAD_MIN:
            error, payload = want, free_all - want
        elif free_all - PAYLOAD_MIN >= ERROR_SQUEEZED:
            error, payload = free_all - PAYLOAD_MIN, PAYLOAD_MIN
        else:
            before = inner - sum(fixed[:error_at]) - pad  # the error's text up to the edge
            error = min(want, max(before, len("last error")))
            payload = before - error - pad
            if payload < PAYLOAD_MIN:
                # Rather than a payload cut to "p…" at the edge, the error reaches the edge
                # and the payload starts past it.
                error, payload = max(before, error), PAYLOAD_MIN
        return {error_at: error, payload_at: payload}

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
        *,
        new_view: bool = False,
        follow_top: bool = False,
    ) -> None:
        """Make the table hold exactly `rows`, in their order, touching only what changed.
        The cursor stays on its job; if that job is gone it stays at its height, or with
        `new_view` (the operator changed the filter) it goes to the top. With `follow_top`
        (the operator has not moved it yet) it stays on the first row, like `tail -f`."""
        self._shown = (rows, marks, follow_top)
        self._fitted_width = self.size.width
        budget = self._budget(rows)
        self._set_widths(budget)
        keep_id = self.highlighted_id
        sideways = self.scroll_x  # a rebuild or a width change must not scroll back left
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
            position = {job_id: n for n, job_id in enumerate(order)}
            self.sort("id", key=lambda cell: position[cell.plain])
        if sideways:
            self.call_after_refresh(self.scroll_to, x=sideways, animate=False, immediate=True)
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

    def _set_widths(self, budget: dict[int, int]) -> None:
        """Give the error and payload columns their widths. They are set, not left to the
        cells: DataTable only ever widens a column to fit its cells, and a budget shrinks
        when a longer error arrives."""
        columns = self.ordered_columns
        changed = False
        for index, width in budget.items():
            column = columns[index]
            if column.auto_width or column.width != width:
                column.auto_width, column.width = False, width
                changed = True
        if changed:
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()

    def _hold_on_screen(self, index: int, on_screen: int) -> None:
        self.scroll_to(y=max(index - on_screen, 0), animate=False, immediate=True)

    def _update_row(self, key: str, cells: Sequence[Text]) -> None:
        current = self.get_row(key)
        columns = self.ordered_columns
        for column, old, new in zip(columns, current, cells, strict=True):
            if old != new:
                self.update_cell(key, column.key, new, update_width=True)

    def show_sort(self, column: str, descending: bool) -> None:
        """Put an arrow on the header of the column the rows are sorted by."""
        for key, header in COLUMNS:
            if key not in self.columns:
                continue
            label = Text(header)
            if key == column:
                label.append("↓" if descending else "↑", style="bold")
            if self.columns[key].label != label:
                self.columns[key].label = label
                self._require_update_dimensions = True
                self.refresh()

    def set_mark(self, job_id: int, marked: bool) -> None:
        try:
            self.update_cell(str(job_id), _MARK_COLUMN, self._mark_cell(marked))
        except Exception:  # the job left the window meanwhile
            pass

    @staticmethod
    def _mark_cell(marked: bool) -> Text:
        return Text(MARK, style="bold magenta") if marked else Text(" ")
