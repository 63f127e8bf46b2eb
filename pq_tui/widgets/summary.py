"""The summary: counts per status per queue, throughput, oldest ready job, and the manager."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_core import QueueStats, Status, identity
from pq_tui.display import (
    STATUS_LABEL,
    STATUS_STYLE,
    ago,
    count,
    inert,
    span,
    sparkline,
)
from pq_tui.snapshot import Snapshot

MAX_QUEUES = 6  # rows before the rest are summed up in one line


class Summary(Static):
    """Counts, throughput and manager status from the latest snapshot."""

    def show(self, snapshot: Snapshot) -> None:
        counts = self._counts(snapshot)
        # An explicit height: the panel's size must follow its rows on the very first refresh.
        self.styles.height = counts.row_count + 3
        self.update(Group(counts, self._manager(snapshot)))

    def _counts(self, snapshot: Snapshot) -> Table:
        # The sparkline gets what the other columns leave: up to 30 minutes, at least 6.
        minutes = max(6, min(30, self.app.size.width - 78))
        table = Table(box=None, padding=(0, 1), expand=False, show_edge=False, pad_edge=False)
        table.add_column("queue", style="bold", no_wrap=True, max_width=16)
        for status in Status:
            table.add_column(
                Text(STATUS_LABEL[status], style=STATUS_STYLE[status]),
                justify="right",
                no_wrap=True,
            )
        table.add_column("oldest ready", justify="right", no_wrap=True)
        table.add_column(f"done/min, {minutes} min", no_wrap=True, min_width=minutes)
        table.add_column("last", justify="right", no_wrap=True)  # the last whole minute
        queues = list(snapshot.queues)
        for qs in queues[:MAX_QUEUES]:
            table.add_row(*self._queue_cells(minutes, inert(qs.queue, limit=16), qs))
        if len(queues) > MAX_QUEUES:
            rest = queues[MAX_QUEUES:]
            table.add_row(Text(f"+{len(rest)} more", style="dim"), *[""] * 7)
        if len(queues) > 1:
            table.add_row(*self._queue_cells(minutes, Text("all", style="italic"), *queues))
        return table

    @staticmethod
    def _queue_cells(minutes: int, name: Text, *queues: QueueStats) -> list[Text]:
        counts = dict.fromkeys(Status, 0)
        for qs in queues:
            for status, n in qs.counts.items():
                counts[status] += n
        ages = [qs.oldest_ready_age for qs in queues if qs.oldest_ready_age is not None]
        width = max((len(qs.done_per_minute) for qs in queues), default=0)
        per_minute = [
            sum(qs.done_per_minute[i] for qs in queues if i < len(qs.done_per_minute))
            for i in range(width)
        ]
        # The newest minute is still running; the one before it is the last whole minute.
        last = per_minute[-2] if len(per_minute) > 1 else (per_minute[-1] if per_minute else 0)
        cells = [name]
        for status in Status:
            n = counts[status]
            cells.append(Text(count(n), style=STATUS_STYLE[status] if n else "dim"))
        cells.append(Text(span(max(ages)) if ages else "—", style="" if ages else "dim"))
        cells.append(Text(sparkline(per_minute[-minutes:]), style="green"))
        cells.append(Text(f"{count(last)}/min"))
        return cells

    @staticmethod
    def _manager(snapshot: Snapshot) -> Text:
        now = snapshot.taken_at
        managers = [w for w in snapshot.workers if w.kind == "manager"]
        alive = [w for w in managers if w.alive]
        text = Text("manager ", style="bold", no_wrap=True, overflow="ellipsis")
        if alive:
            newest = max(alive, key=lambda w: w.last_seen)
            text.append("● running ", style="bold green")
            text.append_text(inert(identity.short(newest.id)))
            text.append(f" · heard {ago(newest.last_seen, now)}")
        elif managers:
            newest = max(managers, key=lambda w: w.last_seen)
            text.append("● not running ", style="bold red")
            text.append(f"· last heard {ago(newest.last_seen, now)}")
        else:
            text.append("● none seen ", style="bold red")
            text.append("· crashed consumers' jobs are not being taken back")
        sweep = next((e for e in snapshot.events if e.actor.startswith("manager")), None)
        if sweep is not None:
            text.append(f" · last change {ago(sweep.at, now)}: ")
            text.append_text(inert(sweep.detail, limit=70))
        consumers = [w for w in snapshot.workers if w.kind == "consumer"]
        live = sum(1 for w in consumers if w.alive)
        text.append("\nconsumers ", style="bold")
        text.append(f"{live} alive", style="green" if live else "dim")
        text.append(f" of {count(len(consumers))} registered")
        in_flight = snapshot.counts[Status.IN_PROGRESS]
        text.append(f" · {count(in_flight)} in flight")
        return text
