"""The one confirmation every destructive action goes through."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask one yes/no question. `y` or enter confirms, `n` or escape cancels; the cancel button
    has the focus, so a stray click or space never confirms."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Confirm", priority=True),
        Binding("n,escape", "answer(False)", "Cancel", priority=True),
    ]

    def __init__(self, title: str, question: Text, confirm_label: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog") as box:
            box.border_title = self.title_text
            yield Static(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button("Cancel  n / esc", id="cancel")
                label = f"{self.confirm_label}  y / enter"
                yield Button(label, id="confirm-button", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-button")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
