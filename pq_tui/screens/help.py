"""The key reference, drawn from the actions table: what it lists is what the keys do."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pq_tui import actions


class HelpScreen(ModalScreen[None]):
    """Every key of the dashboard and of a job's detail, by section; actions that change the
    store are left out in read-only mode."""

    BINDINGS = [Binding("escape,q,question_mark,enter", "close", "Close")]

    def __init__(self, read_only: bool) -> None:
        super().__init__(classes="dialog-screen")
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        group = ""
        for action in self._listed():
            if action.group != group:
                group = action.group
                if table.row_count:
                    table.add_row("", "")
                table.add_row(Text(actions.GROUP_TITLES[group], style="bold"), "")
            table.add_row(action.key_text, action.description)
        table.add_row("", "")
        table.add_row("ctrl+p", "command palette: every action by name")
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

    def _listed(self) -> list[actions.Action]:
        listed = list(actions.available(actions.DASHBOARD, self.read_only))
        listed += actions.available(actions.DETAIL, self.read_only)
        listed += actions.available(actions.ERRORS, self.read_only)
        listed += actions.available(actions.QUEUES, self.read_only)
        return listed

    def action_close(self) -> None:
        self.dismiss(None)
