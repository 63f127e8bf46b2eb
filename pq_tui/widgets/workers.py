"""The workers: registered consumers (with their queue) and managers, whether each is alive,
when last heard."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_core import identity
from pq_tui.display import ago, inert
from pq_tui.snapshot import Snapshot


class WorkersPanel(Static):
    """Consumers and managers from the store's registry, live ones first."""

    def show(self, snapshot: Snapshot) -> None:
        if not snapshot.workers:
            self.update(Text("no consumer or manager has registered", style="dim"))
            return
        table = Table(box=None, padding=(0, 1), expand=True, pad_edge=False)
        table.add_column("worker", no_wrap=True, ratio=1, min_width=13)
        table.add_column("queue", no_wrap=True, max_width=14)  # a manager serves every queue
        table.add_column("heard", justify="right", no_wrap=True)
        ordered = sorted(snapshot.workers, key=lambda w: (not w.alive, w.kind, w.id))
        for worker in ordered:
            name = Text()
            name.append("● " if worker.alive else "○ ", style="green" if worker.alive else "red")
            name.append_text(inert(identity.short(worker.id), limit=30))
            if not worker.alive:
                name.stylize("dim")
            table.add_row(
                name,
                inert(worker.queue, limit=14)
                if worker.kind == "consumer"
                else Text("manager", style="italic"),
                Text(ago(worker.last_seen, snapshot.taken_at), style="dim"),
            )
        self.update(table)
