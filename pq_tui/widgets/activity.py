"""The activity log: what the manager, consumers and operators did (failures, requeues,
dead-letters, purges, deletes), who did it and when, newest first. A failure shows the line of
its error that says what happened (a traceback's last line), not its first."""

from __future__ import annotations

import re

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from pq_core import identity
from pq_tui.display import ago, event_line, inert
from pq_tui.snapshot import Snapshot

KIND_STYLE = {
    "requeue": "cyan",
    "dead": "bold red",
    "delete": "magenta",
    "purge": "magenta",
}


_WORKER_ID = re.compile(r"^\S+:\d+:\d+$")  # host:pid:process-start, as consumers record


def _who(actor: str) -> str:
    """A consumer's worker id as host:pid, the way the workers panel names it."""
    return identity.short(actor) if _WORKER_ID.match(actor) else actor


class ActivityLog(Static):
    """Recent events from the store's event log."""

    def show(self, snapshot: Snapshot) -> None:
        if not snapshot.events:
            self.update(Text("no manager or operator activity yet", style="dim"))
            return
        table = Table(box=None, padding=(0, 1), show_header=False, expand=True, pad_edge=False)
        table.add_column("when", justify="right", no_wrap=True, min_width=10)
        table.add_column("what", no_wrap=True, min_width=7)
        table.add_column("who", no_wrap=True, max_width=28)
        table.add_column("detail", no_wrap=True, ratio=1)
        for event in snapshot.events:
            table.add_row(
                Text(ago(event.at, snapshot.taken_at), style="dim"),
                Text(event.kind, style=KIND_STYLE.get(event.kind, "")),
                inert(_who(event.actor), limit=28),
                inert(event_line(event.detail), limit=200),
            )
        self.update(table)
