"""The queues: one row per queue with its counts, scheduled jobs, oldest ready job, done and
failed in the last whole minute, and whether it is paused. `enter` scopes the dashboard to the
queue (or, on the first row, to every queue again); `P` pauses or resumes it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from pq_core import Queue as PqQueue
from pq_core import QueueStats, Status
from pq_tui import actions, operations
from pq_tui.display import SCHEDULED_STYLE, STATUS_STYLE, count, inert, span
from pq_tui.screens.listing import ListScreen
from pq_tui.widgets.summary import Throughput

EVERY_QUEUE = "\x00every"  # the first row's key: no queue name has a control character


class QueuesScreen(ListScreen):
    ACTIONS = actions.QUEUES
    BINDINGS = actions.bindings(ACTIONS)
    COLUMNS = (
        ("queue", False),
        ("ready", True),
        ("scheduled", True),
        ("in progress", True),
        ("done", True),
        ("dead", True),
        ("oldest ready", True),
        ("done/min", True),
        ("failed/min", True),
        ("state", False),
    )
    TITLE_TEXT = "queues"

    def __init__(self, scope: str | None, *, fixed: str | None = None) -> None:
        """`scope`: the queue the dashboard shows now (None: every queue); `fixed`: the one
        queue pq-tui was opened on (--queue), then the only one listed."""
        super().__init__(scope, id="queues-screen")
        self.fixed = fixed
        self.initial = EVERY_QUEUE if scope is None else scope

    def read(self, queue: PqQueue) -> Sequence[object]:
        stats = queue.stats()
        if self.fixed is not None:
            return (stats[self.fixed],)
        listed = tuple(stats.queues.values())
        return (EVERY_QUEUE, *listed) if len(listed) != 1 else listed

    def key(self, row: object) -> str:
        return row if isinstance(row, str) else row.queue  # type: ignore[union-attr]

    def cells(self, row: object, now: float) -> Sequence[Text]:
        if isinstance(row, str):
            queues = [r for r in self.rows if isinstance(r, QueueStats)]
            name = Text("every queue", style="italic")
            paused = sum(1 for qs in queues if qs.paused)
            state = Text(f"{paused} paused", style="bold yellow") if paused else Text("")
        else:
            queues = [row]
            name = inert(row.queue, limit=30)
            name.stylize("bold")
            state = (
                Text("paused", style="bold yellow") if row.paused else Text("running", style="dim")
            )
        figures = Throughput.of(*queues)
        counts = dict(figures.counts)
        counts[Status.READY] -= figures.scheduled
        cells = [name]
        for status in Status:
            n = counts[status]
            cells.append(Text(count(n), style=STATUS_STYLE[status] if n else "dim"))
            if status == Status.READY:
                n = figures.scheduled
                cells.append(Text(count(n), style=SCHEDULED_STYLE if n else "dim"))
        age = figures.oldest_ready_age
        cells.append(Text(span(age) if age is not None else "—", style="" if age else "dim"))
        cells.append(Text(count(figures.last_done)))
        failed = figures.last_failed
        cells.append(Text(count(failed), style="red" if failed else "dim"))
        cells.append(state)
        for cell in cells[1:-1]:
            cell.justify = "right"
        return cells

    def subtitle(self) -> Text:
        return Text("enter shows the queue · P pauses or resumes it · esc back")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_pause":
            if self.pq.read_only:
                return False
            return True if self.highlighted not in (None, EVERY_QUEUE) else None
        return True

    def action_toggle_pause(self) -> None:
        """Pause the highlighted queue (its jobs are handed out to no consumer, puts go on),
        or resume it."""
        row = self.row_of(self.highlighted)
        if self.pq.read_only or not isinstance(row, QueueStats):
            self.app.bell()
            return
        change = operations.pause(row.queue, not row.paused, self.pq.actor)
        self.pq.store.change(change.title, change.run, change.report, self)

    def drawn(self) -> None:
        """The first time rows come, the cursor goes to the queue the dashboard shows."""
        if self.initial is not None and self.rows:
            try:
                self.table.move_cursor(row=self.table.get_row_index(self.initial))
            except Exception:  # the queue is gone meanwhile
                pass
            self.initial = None
