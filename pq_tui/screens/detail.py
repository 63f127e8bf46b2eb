"""One job in full: its fields, the whole payload (wrapped, scrollable) and its history."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pq_core import Item
from pq_tui.display import (
    STATUS_LABEL,
    STATUS_STYLE,
    ago,
    inert,
    payload_kind,
    payload_text,
    span,
    utc,
)

MAX_SHOWN = 1_000_000  # characters of payload drawn; beyond that the screen would crawl


class DetailScreen(ModalScreen[None]):
    """A job as it was when opened. Nothing in it is interpreted: markup and control
    characters in the payload, error or history show as text and visible escapes."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "Close"),
    ]

    def __init__(self, item: Item, now: float) -> None:
        super().__init__(classes="dialog-screen")
        self.item = item
        self.now = now

    def compose(self) -> ComposeResult:
        item = self.item
        with VerticalScroll(id="detail", classes="dialog") as box:
            box.border_title = f"job {item.id}"
            box.border_subtitle = "↑↓ pgup pgdn scroll · esc closes"
            yield Static(self._fields(), id="fields")
            text = payload_text(item.payload, pretty=True)
            size = len(text)
            heading = f"payload · {payload_kind(item.payload)} · {size:,} characters"
            yield Static(Text(heading, style="bold"), classes="section")
            shown = inert(text, multiline=True, limit=MAX_SHOWN)
            if size > MAX_SHOWN:
                shown.append(f"\n… {size - MAX_SHOWN:,} more characters not shown", style="dim")
            yield Static(shown, id="payload")
            if item.last_error:
                yield Static(Text("last error", style="bold"), classes="section")
                yield Static(inert(item.last_error, multiline=True), id="error")
            yield Static(Text("history", style="bold"), classes="section")
            yield Static(self._history(), id="history")

    def on_mount(self) -> None:
        self.query_one("#detail").focus()

    def _fields(self) -> Table:
        item, now = self.item, self.now
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        status = Text(STATUS_LABEL[item.status], style=STATUS_STYLE[item.status])
        lease = Text("")
        if item.lease_expires_at is not None:
            lease = Text(f"{utc(item.lease_expires_at)} ({_until(item.lease_expires_at, now)})")
        rows: list[tuple[str, Text]] = [
            ("status", status),
            ("queue", inert(item.queue)),
            ("priority", Text(str(item.priority))),
            ("attempts", Text(f"{item.attempts} of {item.max_attempts}")),
            ("created", Text(f"{utc(item.created_at)} ({ago(item.created_at, now)})")),
            ("changed", Text(f"{utc(item.updated_at)} ({ago(item.updated_at, now)})")),
            ("available", Text(f"{utc(item.available_at)} ({_until(item.available_at, now)})")),
            ("lease until", lease),
            ("worker", inert(item.worker or "")),
            ("dedup key", inert(item.dedup_key or "")),
        ]
        for name, value in rows:
            if value.plain:
                table.add_row(name, value)
        return table

    def _history(self) -> Table | Text:
        if not self.item.history:
            return Text("no events for this job", style="dim")
        table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
        table.add_column(no_wrap=True, style="dim")
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, max_width=30)
        table.add_column(ratio=1)
        for event in self.item.history:
            table.add_row(
                utc(event.at), event.kind, inert(event.actor, limit=30), inert(event.detail)
            )
        return table

    def action_close(self) -> None:
        self.dismiss(None)


def _until(moment: datetime, now: float) -> str:
    seconds = moment.timestamp() - now
    return f"in {span(seconds)}" if seconds > 0 else ago(moment, now)
