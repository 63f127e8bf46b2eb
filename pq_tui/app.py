"""The App: what the dashboard was opened on, the store thread, and the screens over it.

The App holds no view state: the dashboard is a Screen of its own (`screens/dashboard.py`),
its keys come from the actions table (`actions.py`), and every store call goes through one
`StoreThread`, whose answers come back as messages (`messages.py`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.message_pump import MessagePump
from textual.screen import Screen

from pq_core import Queue, identity
from pq_tui import actions
from pq_tui.operations import Change
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.dashboard import DashboardScreen
from pq_tui.store_thread import StoreThread

SWITCH_INTERVAL = 0.0005  # seconds; see PqApp.on_mount


class PqApp(App[None]):
    """The pq operations dashboard for one store.

    `queue` is the pq_core Queue to read and act through, `clock` gives "now" in epoch seconds
    (ages and leases are shown relative to it). `scope` is the queue name to show, or None for
    every queue in the store. `source` names the store in the top line (never with a
    password). `path`, the store's file, is watched: removed or replaced by another file, it is
    shown as a store error."""

    CSS_PATH = "app.tcss"
    TITLE = "pq-tui"

    def __init__(
        self,
        queue: Queue,
        clock: Callable[[], float] = time.time,
        *,
        scope: str | None = None,
        source: str = "",
        read_only: bool = False,
        refresh_every: float = 1.0,
        actor: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.clock = clock
        self.scope = scope
        self.source = source or repr(queue)
        self.read_only = read_only
        self.refresh_every = refresh_every
        self.actor = actor or f"pq-tui {identity.user()}"
        self.store = StoreThread(queue, clock, scope=scope, path=path)
        self._switch_interval = sys.getswitchinterval()
        # The rows each list screen (errors, queues) showed last, by (screen, queue shown).
        self.listed: dict[tuple[str, str | None], tuple[object, ...]] = {}

    def get_default_screen(self) -> Screen:
        return DashboardScreen()

    @property
    def dashboard(self) -> DashboardScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    def on_mount(self) -> None:
        # The store thread gives up the GIL at every row SQLite steps through; while the UI
        # thread paints, it waited up to the default 5 ms to get it back each time, and a
        # 10 ms refresh took 150-250 ms at 1,000,000 jobs. A shorter interval lets it back in.
        sys.setswitchinterval(min(SWITCH_INTERVAL, self._switch_interval))
        self.store.start()

    def on_unmount(self) -> None:
        self.store.stop()
        sys.setswitchinterval(self._switch_interval)

    @property
    def dialog_open(self) -> bool:
        """Whether anything covers the dashboard (a dialog, the help, a job's detail)."""
        return len(self.screen_stack) > 1

    def confirm(self, change: Change, reply_to: MessagePump) -> None:
        """Ask the operator; on yes, make the change on the store thread. Its ActionDone goes
        to `reply_to`."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.store.change(change.title, change.run, change.report, reply_to)

        self.push_screen(ConfirmScreen(change.title, change.question, change.label), answered)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists the actions of the screen it was opened over, from the same table
        as its keys and the help, the ones that apply right now."""
        yield from super().get_system_commands(screen)
        table: tuple[actions.Action, ...] = getattr(screen, "ACTIONS", ())
        for action in actions.available(table, self.read_only):
            if not action.title:
                continue
            if screen.check_action(action.name, action.parameters):
                yield SystemCommand(
                    action.title,
                    f"{action.description} (key {action.key_text})",
                    partial(self.run_action, action.action, screen),
                )
