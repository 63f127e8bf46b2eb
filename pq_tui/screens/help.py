"""The key reference."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str, bool], ...] = (
    ("1 … 5", "show all / ready / in progress / done / dead jobs", False),
    ("/", "filter by text (payload, error, worker or id); enter applies, esc closes", False),
    ("s", "newest or oldest first", False),
    ("↑ ↓ pgup pgdn", "move; the window of jobs follows the cursor through the store", False),
    ("g  G", "first job (the cursor then follows the newest)  /  last job", False),
    ("enter", "open the job: whole payload and its history", False),
    (
        "space",
        "mark or unmark the job (actions apply to marked jobs, else the highlighted one)",
        True,
    ),
    ("r", "requeue: put the jobs back to ready, attempts reset", True),
    ("d", "delete the jobs for good", True),
    ("p", "purge: remove done or dead jobs older than an age", True),
    ("esc", "clear marks and the text filter", False),
    ("ctrl+p", "command palette: every action by name", False),
    ("?", "this help", False),
    ("q", "quit", False),
)


class HelpScreen(ModalScreen[None]):
    """Every key and what it does; write actions are left out in read-only mode."""

    BINDINGS = [Binding("escape,q,question_mark,enter", "close", "Close")]

    def __init__(self, read_only: bool) -> None:
        super().__init__(classes="dialog-screen")
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what, writes in KEYS:
            if writes and self.read_only:
                continue
            table.add_row(keys, what)
        note = Text(
            "Every destructive action asks first (y / enter confirms, n / esc cancels) and is "
            "recorded in the activity log with your name.",
            style="dim",
        )
        if self.read_only:
            note = Text("Read-only: requeue, delete, purge and marks are off.", style="yellow")
        with VerticalScroll(id="help", classes="dialog") as box:
            box.border_title = "keys"
            box.border_subtitle = "esc closes"
            yield Static(table)
            yield Static(note, id="help-note")

    def action_close(self) -> None:
        self.dismiss(None)
