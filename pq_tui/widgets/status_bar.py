"""The top line: which store and queue, the mode, and whether the data is live or stale."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_tui.display import inert


class StatusBar(Static):
    """Store, scope and liveness: "live", "store busy" (showing older data) or an error."""

    def show(self, source: str, scope: str | None, read_only: bool, state: Text) -> None:
        left = Text("pq ", style="bold")
        left.append_text(inert(source, limit=60))
        left.append(" · ")
        if scope is None:
            left.append("every queue")
        else:
            left.append("queue ")
            left.append_text(inert(scope, limit=30))
        if read_only:
            left.append(" · ")
            left.append("read-only", style="bold yellow")
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, state)
        self.update(grid)
