"""The summary: counts per status per queue, throughput, oldest ready job, and the manager.

Throughput is drawn on one scale for the whole panel (named in the header: the top bar's
value), so two queues' bars can be compared; the bars are whole minutes only, and the "last"
figure is the last bar's minute. Compact (zoomed, or a short terminal), it is two lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_core import QueueStats, Status, identity
from pq_tui.display import (
    SCHEDULED_LABEL,
    SCHEDULED_STYLE,
    STATUS_LABEL,
    STATUS_STYLE,
    ago,
    count,
    inert,
    plural,
    span,
    sparkline,
)
from pq_tui.snapshot import Snapshot

MAX_QUEUES = 6  # rows before the rest are summed up in one line


class Summary(Static):
    """Counts, throughput and manager status from the latest snapshot."""

    compact = False

    def show(self, snapshot: Snapshot) -> None:
        if self.compact:
            self.styles.height = 2
            self.update(Group(self._compact_counts(snapshot), self._manager(snapshot)))
            return
        counts = self._counts(snapshot)
        # An explicit height: the panel's size must follow its rows on the very first refresh.
        self.styles.height = counts.row_count + 3
        self.update(Group(counts, self._manager(snapshot)))

    def _counts(self, snapshot: Snapshot) -> Table:
        queues = list(snapshot.queues)
        # The sparkline gets what the other columns leave: up to 29 whole minutes, at least 6.
        minutes = max(6, min(29, self.app.size.width - 103))
        shown = [(queue_name(qs), Throughput.of(qs)) for qs in queues[:MAX_QUEUES]]
        rows = list(shown)
        if len(queues) > 1:
            rows.append((Text("all", style="italic"), Throughput.of(*queues)))
        scale = max((max(t.done[-minutes:], default=0) for _, t in rows), default=0)
        table = Table(box=None, padding=(0, 1), expand=False, show_edge=False, pad_edge=False)
        table.add_column("queue", style="bold", no_wrap=True, max_width=24)
        for status in Status:
            table.add_column(
                Text(STATUS_LABEL[status], style=STATUS_STYLE[status]),
                justify="right",
                no_wrap=True,
            )
            if status == Status.READY:
                label = Text(SCHEDULED_LABEL, style=SCHEDULED_STYLE)
                table.add_column(label, justify="right", no_wrap=True)
        table.add_column("oldest ready", justify="right", no_wrap=True)
        heading = f"done/min · {minutes} min · █ = {count(scale)}"
        table.add_column(heading, no_wrap=True, min_width=minutes)
        table.add_column("last", justify="right", no_wrap=True)  # the last bar's minute
        table.add_column(Text("failed", style="red"), justify="right", no_wrap=True)
        for name, throughput in shown:
            table.add_row(*self._cells(name, throughput, minutes, scale))
        if len(queues) > MAX_QUEUES:
            more = Text(f"+{len(queues) - MAX_QUEUES} more", style="dim")
            table.add_row(more, *[""] * (len(table.columns) - 1))
        if len(queues) > 1:
            table.add_row(*self._cells(*rows[-1], minutes, scale))
        return table

    @staticmethod
    def _cells(name: Text, throughput: Throughput, minutes: int, scale: int) -> list[Text]:
        cells = [name]
        for status in Status:
            n = throughput.counts[status]
            if status == Status.READY:
                n -= throughput.scheduled  # available now; the scheduled ones have a column
            cells.append(Text(count(n), style=STATUS_STYLE[status] if n else "dim"))
            if status == Status.READY:
                n = throughput.scheduled
                cells.append(Text(count(n), style=SCHEDULED_STYLE if n else "dim"))
        age = throughput.oldest_ready_age
        cells.append(Text(span(age) if age is not None else "—", style="" if age else "dim"))
        cells.append(Text(sparkline(throughput.done[-minutes:], top=scale), style="green"))
        cells.append(Text(f"{count(throughput.last_done)}/min"))
        n = throughput.last_failed
        cells.append(Text(f"{count(n)}/min", style="red" if n else "dim"))
        return cells

    def _compact_counts(self, snapshot: Snapshot) -> Text:
        """Every queue in the view summed up on one line."""
        total = Throughput.of(*snapshot.queues)
        text = Text(no_wrap=True, overflow="ellipsis")
        for status in Status:
            n = total.counts[status]
            if status == Status.READY:
                n -= total.scheduled
            text.append(f"{STATUS_LABEL[status]} ", style="dim")
            text.append(count(n), style=STATUS_STYLE[status] if n else "dim")
            text.append("  ")
            if status == Status.READY:
                text.append("sched ", style="dim")
                n = total.scheduled
                text.append(count(n), style=SCHEDULED_STYLE if n else "dim")
                text.append("  ")
        age = total.oldest_ready_age
        if age is not None:
            text.append("oldest ", style="dim")
            text.append(span(age))
            text.append("  ")
        paused = [qs.queue for qs in snapshot.queues if qs.paused]
        if paused:
            text.append("paused ", style="bold yellow")
            text.append_text(inert(", ".join(paused), limit=30))
        text.rstrip()
        return text

    def _manager(self, snapshot: Snapshot) -> Text:
        now = snapshot.taken_at
        managers = [w for w in snapshot.workers if w.kind == "manager"]
        alive = [w for w in managers if w.alive]
        text = Text("manager ", style="bold", no_wrap=True, overflow="ellipsis", end="")
        if alive:
            newest = max(alive, key=lambda w: w.last_seen)
            text.append("● running", style="bold green")
            if not self.compact:
                text.append(" ")
                text.append_text(inert(identity.short(newest.id)))
            text.append(f" · heard {ago(newest.last_seen, now)}")
        elif managers:
            newest = max(managers, key=lambda w: w.last_seen)
            text.append("● not running ", style="bold red")
            text.append(f"· last heard {ago(newest.last_seen, now)}")
        else:
            text.append("● none seen ", style="bold red")
            text.append("· crashed consumers' jobs are not being taken back")
        consumers = [w for w in snapshot.workers if w.kind == "consumer"]
        live = sum(1 for w in consumers if w.alive)
        if self.compact:
            text.append(" · ")
            text.append(plural(live, "live consumer"), style="green" if live else "dim")
            total = Throughput.of(*snapshot.queues)
            text.append(" · done ", style="dim")
            text.append(f"{count(total.last_done)}/min")
            text.append(" failed ", style="dim")
            failed = total.last_failed
            text.append(f"{count(failed)}/min", style="red" if failed else "")
            return text
        sweep = next((e for e in snapshot.events if e.actor.startswith("manager")), None)
        if sweep is not None:
            text.append(f" · last change {ago(sweep.at, now)}: ")
            text.append_text(inert(sweep.detail, limit=70))
        text.append("\nconsumers ", style="bold")
        text.append(f"{live} alive", style="green" if live else "dim")
        text.append(f" of {count(len(consumers))} registered")
        in_flight = snapshot.counts[Status.IN_PROGRESS]
        text.append(f" · {count(in_flight)} in flight")
        return text


def queue_name(qs: QueueStats) -> Text:
    """A queue's name, with "paused" after it when it is."""
    name = inert(qs.queue, limit=16)
    if qs.paused:
        name.append(" paused", style="bold yellow")
    return name


class Throughput:
    """One row's figures: counts, the oldest ready age, and done and failed per whole minute,
    oldest first; the running minute is left out, so the last bar and the "last" figure are
    the same minute."""

    def __init__(
        self,
        counts: dict[Status, int],
        oldest_ready_age: float | None,
        done: Sequence[int],
        failed: Sequence[int],
        scheduled: int = 0,
    ) -> None:
        self.counts = counts
        self.scheduled = scheduled
        self.oldest_ready_age = oldest_ready_age
        self.done = list(done)
        self.failed = list(failed)

    @classmethod
    def of(cls, *queues: QueueStats) -> Throughput:
        counts = dict.fromkeys(Status, 0)
        for qs in queues:
            for status, n in qs.counts.items():
                counts[status] += n
        ages = [qs.oldest_ready_age for qs in queues if qs.oldest_ready_age is not None]
        return cls(
            counts,
            max(ages) if ages else None,
            _whole_minutes([qs.done_per_minute for qs in queues]),
            _whole_minutes([qs.failed_per_minute for qs in queues]),
            sum(qs.scheduled for qs in queues),
        )

    @property
    def last_done(self) -> int:
        return self.done[-1] if self.done else 0

    @property
    def last_failed(self) -> int:
        return self.failed[-1] if self.failed else 0


def _whole_minutes(series: Sequence[Sequence[int]]) -> list[int]:
    """Per-minute series summed, newest last, without the running (last) minute."""
    width = max((len(s) for s in series), default=0)
    summed = [0] * width
    for s in series:
        for i, n in enumerate(s):
            summed[width - len(s) + i] += n  # aligned on the newest minute
    return summed[:-1]
