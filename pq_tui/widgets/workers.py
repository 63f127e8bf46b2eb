"""The workers: registered consumers (with their queue) and managers, whether each is alive,
the job(s) each consumer holds and since when, how many it finished in the last minute, and
when it was last heard from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_core import Worker, identity
from pq_tui.display import ago, count, inert, span
from pq_tui.snapshot import Snapshot


class WorkersPanel(Static):
    """Consumers and managers from the store's registry, live ones first."""

    def show(self, snapshot: Snapshot) -> None:
        if not snapshot.workers:
            self.update(Text("no consumer or manager has registered", style="dim"))
            return
        width = self.size.width or max(self.app.size.width * 2 // 5 - 4, 20)
        wide, medium = width >= 58, width >= 40  # narrower: fewer columns, not cut ones
        table = Table(box=None, padding=(0, 1), expand=True, pad_edge=False)
        table.add_column("worker", no_wrap=True, ratio=1, min_width=13)
        if wide:  # a manager serves every queue
            table.add_column("queue", no_wrap=True, max_width=14)
        table.add_column("job", justify="right", no_wrap=True)
        if medium:
            table.add_column("for", justify="right", no_wrap=True)
        table.add_column("done", justify="right", no_wrap=True)  # in the last minute
        if medium:
            table.add_column("heard", justify="right", no_wrap=True)  # how long ago
        ordered = sorted(snapshot.workers, key=lambda w: (not w.alive, w.kind, w.id))
        for worker in ordered:
            name = Text()
            name.append("● " if worker.alive else "○ ", style="green" if worker.alive else "red")
            name.append_text(inert(identity.short(worker.id), limit=30))
            if not worker.alive:
                name.stylize("dim")
            jobs, held, done = self._work(worker, snapshot.taken_at)
            cells = [name]
            if wide:
                cells.append(
                    inert(worker.queue, limit=14)
                    if worker.kind == "consumer"
                    else Text("manager", style="italic")
                )
            cells.append(jobs)
            if medium:
                cells.append(held)
            cells.append(done)
            if medium:
                heard = ago(worker.last_seen, snapshot.taken_at)
                cells.append(Text(heard.removesuffix(" ago"), style="dim"))
            table.add_row(*cells)
        self.update(table)

    @staticmethod
    def _work(worker: Worker, now: float) -> tuple[Text, Text, Text]:
        """The job(s) a consumer holds ("17", "17 +2"), for how long, and how many it
        finished in the last minute."""
        if worker.kind != "consumer":
            return Text(""), Text(""), Text("")
        jobs = Text("idle", style="dim") if worker.alive else Text("")
        if worker.jobs:
            first = min(worker.jobs)
            jobs = Text(str(first), style="bold yellow")
            if len(worker.jobs) > 1:
                jobs.append(f" +{len(worker.jobs) - 1}", style="yellow")
        held = Text("")
        if worker.busy_since is not None:
            held = Text(span(now - worker.busy_since.timestamp()))
        done = worker.done_last_minute
        return jobs, held, Text(count(done), style="" if done else "dim")
