"""The purge dialog: which status, how old, and how many jobs that is, before anything goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from pq_core import Status
from pq_tui.display import plural
from pq_tui.messages import PurgeCounted

if TYPE_CHECKING:
    from pq_tui.app import PqApp

PURGEABLE = (Status.DONE, Status.DEAD)  # purging ready or running jobs would lose work
DEFAULT_AGE = "7d"


@dataclass(frozen=True, slots=True)
class PurgeChoice:
    status: Status
    older_than: str
    count: int


class PurgeScreen(ModalScreen[PurgeChoice | None]):
    """Choose a status and an age; the dialog shows how many jobs a purge would remove (a dry
    run on the store thread) and returns the choice. The caller then asks for confirmation
    and purges."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "choose", "Purge…", priority=True),
    ]

    def __init__(self, scope_label: str, scope: str | None, *, asked: bool = False) -> None:
        """`asked`: the opener has already asked for the first choice's count (so it is read
        while the dialog is drawn) and hands the answer over with `counted`."""
        super().__init__(classes="dialog-screen")
        self.scope_label = scope_label
        self.scope = scope
        self._counted: PurgeChoice | None = None
        self._asked: tuple[Status, str] | None = (PURGEABLE[0], DEFAULT_AGE) if asked else None
        self._early: PurgeCounted | None = None  # an answer that came before the dialog was up
        self._up = False  # on_mount has run

    def compose(self) -> ComposeResult:
        with Vertical(id="purge", classes="dialog") as box:
            box.border_title = "purge"
            box.border_subtitle = "enter continues · esc cancels"
            yield Label("Remove jobs whose status is")
            with RadioSet(id="purge-status"):
                for index, status in enumerate(PURGEABLE):
                    yield RadioButton(status.value, value=index == 0, name=status.value)
            yield Label("and that last changed longer ago than (90s, 30m, 12h, 7d)")
            yield Input(DEFAULT_AGE, id="purge-age")
            yield Static(Text("counting…", style="dim"), id="purge-count")
            with Horizontal(classes="buttons"):
                yield Button("Cancel  esc", id="cancel")
                yield Button("Purge…  enter", id="purge-button", variant="error", disabled=True)

    def on_mount(self) -> None:
        age = self.query_one("#purge-age", Input)
        age.cursor_blink = not self.app.is_headless  # a still cursor in tests and pictures
        age.focus()
        self._recount()
        self._up = True
        if self._early is not None:
            early, self._early = self._early, None
            self.counted(early)

    @property
    def status(self) -> Status:
        pressed = self.query_one("#purge-status", RadioSet).pressed_button
        return Status(pressed.name) if pressed is not None and pressed.name else PURGEABLE[0]

    @property
    def older_than(self) -> str:
        return self.query_one("#purge-age", Input).value.strip()

    @on(RadioSet.Changed)
    @on(Input.Changed)
    def _recount(self) -> None:
        choice = (self.status, self.older_than)
        if choice == self._asked:
            return  # (the age field reports its first value as a change)
        self._asked = choice
        self._counted = None
        self.query_one("#purge-button", Button).disabled = True
        self.query_one("#purge-count", Static).update(Text("counting…", style="dim"))
        app: PqApp = self.app  # type: ignore[assignment]
        app.store.count_purge(self, self.status, self.older_than, self.scope)

    def on_purge_counted(self, message: PurgeCounted) -> None:
        self.counted(message)

    def counted(self, message: PurgeCounted) -> None:
        """Show a count (asked for by this dialog, or by its opener before it was up)."""
        if not self._up:
            self._early = message
            return
        if (message.status, message.older_than) != (self.status, self.older_than):
            return  # an answer to an earlier choice
        line = self.query_one("#purge-count", Static)
        button = self.query_one("#purge-button", Button)
        if message.count is None:
            line.update(Text(message.error, style="bold red"))
            return
        n = message.count
        jobs = plural(n, f"{message.status.value} job")
        age = message.older_than or "0s"
        if n:
            line.update(
                Text.assemble(
                    ("Will remove ", ""),
                    (jobs, "bold"),
                    (f" last changed more than {age} ago, {self.scope_label}.", ""),
                )
            )
        else:
            line.update(Text(f"No {message.status.value} jobs older than {age}: nothing to purge."))
        self._counted = PurgeChoice(message.status, message.older_than, n)
        button.disabled = n == 0

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#purge-button")
    def action_choose(self) -> None:
        if self._counted is not None and self._counted.count:
            self.dismiss(self._counted)
        else:
            self.app.bell()
