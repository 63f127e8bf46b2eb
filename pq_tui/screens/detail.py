"""One job in full: its fields, the whole error, the whole payload and its history, kept live.

The screen reads the job again at every refresh tick (on the store thread), so ages tick and a
status change made by a consumer, the manager or another operator shows. Its keys (requeue,
delete, copy) are the `actions.DETAIL` table, and its footer shows those only.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from pq_core import Item, Status
from pq_tui import actions, operations
from pq_tui.display import (
    STATUS_LABEL,
    STATUS_STYLE,
    ago,
    event_line,
    inert,
    payload_kind,
    payload_text,
    plural,
    span,
    utc,
)
from pq_tui.messages import ActionDone, JobRead

if TYPE_CHECKING:
    from pq_tui.app import PqApp

MAX_SHOWN = 1_000_000  # characters of payload drawn; beyond that the screen would crawl
WRITES = actions.writes(actions.DETAIL)


class DetailScreen(Screen[None]):
    """A job, live. Nothing in it is interpreted: markup and control characters in the
    payload, error or history show as text and visible escapes."""

    ACTIONS = actions.DETAIL
    BINDINGS = actions.bindings(ACTIONS)

    def __init__(self, item: Item) -> None:
        super().__init__(id="detail-screen")
        self.item = item
        self.gone = ""  # why the job can no longer be read ("" while it can)
        self.store_error = ""  # why the last read failed, when the job may well still be there
        self.reads = 0  # answers applied (tests wait on it)
        self._reading = False
        self._shown_payload: object = None

    @property
    def pq(self) -> PqApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(id="fields")
            yield Static(Text("last error", style="bold"), id="error-heading", classes="section")
            yield Static(id="error")
            yield Static(id="payload-heading", classes="section")
            yield Static(id="payload")
            yield Static(Text("history", style="bold"), classes="section")
            yield Static(id="history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Footer).compact = self.app.size.width < 120
        self._show()
        self.query_one("#detail").focus()
        if self.pq.refresh_every > 0:
            self.set_interval(self.pq.refresh_every, self.reread)

    def reread(self) -> None:
        """Read the job again (one read at a time)."""
        if not self._reading:
            self._reading = True
            self.pq.store.read_job(self.item.id, self)

    def on_job_read(self, message: JobRead) -> None:
        self._reading = False
        self.store_error = ""
        if message.item is not None:
            self.item = message.item
            self.gone = ""
        elif message.missing:
            self.gone = message.error
        else:
            self.store_error = message.error  # shown; the job as last read stays
        self.reads += 1
        self._show()
        self.refresh_bindings()

    # -- drawing -----------------------------------------------------------------------------

    def _show(self) -> None:
        item, now = self.item, self.pq.clock()
        box = self.query_one("#detail")
        title = Text(f"job {item.id} · ")
        if self.gone:
            title.append("gone", style="bold red")
        else:
            title.append(STATUS_LABEL[item.status], style=STATUS_STYLE[item.status])
        box.border_title = title
        trouble = self.gone or self.store_error
        subtitle = Text("↑↓ pgup pgdn scroll · esc back")
        if trouble:
            subtitle = inert(trouble, limit=100)
            subtitle.stylize("red")
        box.border_subtitle = subtitle
        self.query_one("#fields", Static).update(self._fields(now))
        has_error = bool(item.last_error)
        self.query_one("#error-heading").display = has_error
        error = self.query_one("#error", Static)
        error.display = has_error
        if has_error:
            error.update(inert(item.last_error or "", multiline=True))
        if self._shown_payload is None or self._shown_payload != item.payload:
            self._shown_payload = item.payload
            text = payload_text(item.payload, pretty=True)
            size = len(text)
            heading = f"payload · {payload_kind(item.payload)} · {size:,} characters"
            self.query_one("#payload-heading", Static).update(Text(heading, style="bold"))
            shown = inert(text, multiline=True, limit=MAX_SHOWN)
            if size > MAX_SHOWN:
                shown.append(f"\n… {size - MAX_SHOWN:,} more characters not shown", style="dim")
            self.query_one("#payload", Static).update(shown)
        self.query_one("#history", Static).update(self._history())

    def _fields(self, now: float) -> Table:
        item = self.item
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        status = Text(STATUS_LABEL[item.status], style=STATUS_STYLE[item.status])
        if self.gone:
            status = Text("no longer in the store", style="bold red")
        elif item.status == Status.READY and item.available_at.timestamp() > now:
            status.append(f" · scheduled, runs {_until(item.available_at, now)}", style="dim")
        available = Text("")
        if item.status == Status.READY:  # for other statuses it says nothing
            available = Text(f"{utc(item.available_at)} ({_until(item.available_at, now)})")
        lease = Text("")
        if item.status == Status.IN_PROGRESS and item.lease_expires_at is not None:
            lease = Text(f"{utc(item.lease_expires_at)} ({_until(item.lease_expires_at, now)})")
        rows: list[tuple[str, Text]] = [
            ("status", status),
            ("queue", inert(item.queue)),
            ("priority", Text(str(item.priority))),
            ("attempts", Text(f"{item.attempts} of {item.max_attempts}")),
            ("created", Text(f"{utc(item.created_at)} ({ago(item.created_at, now)})")),
            ("changed", Text(f"{utc(item.updated_at)} ({ago(item.updated_at, now)})")),
            ("available", available),
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
                utc(event.at),
                event.kind,
                inert(event.actor, limit=30),
                inert(event_line(event.detail)),  # the whole error is shown above
            )
        return table

    # -- keys --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITES and self.pq.read_only:
            return False
        if action in ("requeue", "delete") and self.gone:
            return None
        if action == "requeue":
            return True if self.item.status != Status.READY else None
        if action == "copy" and parameters == ("error",):
            return True if self.item.last_error else None
        return True

    def action_requeue(self) -> None:
        if self.check_action("requeue", ()):
            self.pq.confirm(operations.requeue([self.item.id], self.pq.actor), self)
        else:
            self.app.bell()

    def action_delete(self) -> None:
        if self.check_action("delete", ()):
            self.pq.confirm(operations.delete([self.item.id], self.pq.actor), self)
        else:
            self.app.bell()

    def on_action_done(self, message: ActionDone) -> None:
        severity = "error" if message.failed else "information"
        self.notify(message.text, severity=severity, markup=False)
        if message.kind == "delete" and not message.failed:
            self.dismiss(None)  # nothing left to show
            return
        if message.kind:
            self.reread()  # show what the change did at once

    def action_copy(self, what: str) -> None:
        item = self.item
        if what == "id":
            text, said = str(item.id), f"copied job id {item.id}"
        elif what == "error":
            if not item.last_error:
                self.app.bell()
                return
            text = item.last_error
            said = f"copied the last error of job {item.id} ({plural(len(text), 'character')})"
        else:
            text = payload_text(item.payload)
            said = f"copied the payload of job {item.id} ({plural(len(text), 'character')})"
        self.app.copy_to_clipboard(text)
        self.notify(said, markup=False)

    def action_scroll(self, step: int) -> None:
        self.query_one("#detail", VerticalScroll).scroll_relative(y=int(step), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


def _until(moment: datetime, now: float) -> str:
    seconds = moment.timestamp() - now
    return f"in {span(seconds)}" if seconds > 0 else ago(moment, now)
