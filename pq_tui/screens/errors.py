"""Errors first: failed (backing off) and dead jobs grouped by error signature (the meaningful
line of the error, numbers and ids normalised), biggest group first. `enter` on a group shows
its jobs on the dashboard, where every job action, bulk ones too, works on the group."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from pq_core import ErrorGroup, Queue
from pq_tui import actions
from pq_tui.display import ago, clip, count, error_line, inert
from pq_tui.screens.listing import ListScreen


class ErrorsScreen(ListScreen):
    ACTIONS = actions.ERRORS
    BINDINGS = actions.bindings(ACTIONS)
    COLUMNS = (
        ("jobs", True),
        ("dead", True),
        ("retrying", True),
        ("newest", True),
        ("queues", False),
        ("error (an example's last line)", False),
    )
    TITLE_TEXT = "errors · failed and dead jobs by error"

    def __init__(self, scope: str | None) -> None:
        super().__init__(scope, id="errors-screen")

    def read(self, queue: Queue) -> Sequence[ErrorGroup]:
        return queue.errors(queue=self.scope)

    @property
    def room(self) -> int:
        """The width the error column has on this terminal (the other columns take ~50)."""
        return max(self.app.size.width - 50, 30)

    def key(self, row: ErrorGroup) -> str:
        return row.signature

    def cells(self, row: ErrorGroup, now: float) -> Sequence[Text]:
        return (
            Text(count(row.count), justify="right", style="bold"),
            Text(count(row.dead), justify="right", style="bold red" if row.dead else "dim"),
            Text(count(row.retrying), justify="right", style="yellow" if row.retrying else "dim"),
            Text(ago(row.newest_at, now), justify="right"),
            inert(", ".join(row.queues), limit=30),
            _red(inert(clip(error_line(row.example).removeprefix("… "), self.room))),
        )

    def subtitle(self) -> Text:
        if not self.rows:
            return Text("no failed or dead jobs · esc back")
        groups = len(self.rows)
        jobs = sum(g.count for g in self.rows)
        return Text(f"{count(jobs)} jobs in {count(groups)} groups · enter shows a group's jobs")


def _red(text: Text) -> Text:
    text.stylize("red")
    return text
