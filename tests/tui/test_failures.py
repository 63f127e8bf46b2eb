"""The dashboard against a store that fails in ways other than being busy, or that other
processes change under it."""

from __future__ import annotations

import pq_core
from pq_tui.app import PqApp
from pq_tui.pilot import settle
from pq_tui.screenshots import SIZE, T0


class BrokenQueue:
    """A queue whose reads fail with an error pq_core did not wrap (a bug, a driver error)."""

    def __init__(self, queue: pq_core.Queue) -> None:
        self._queue = queue
        self.broken = False

    def stats(self):
        if self.broken:
            raise RuntimeError("disk I/O error")
        return self._queue.stats()

    def __getattr__(self, name):
        return getattr(self._queue, name)


async def test_an_unexpected_error_in_a_refresh_shows_once_and_does_not_spin(store):
    queue = BrokenQueue(pq_core.open(store, clock=lambda: T0))
    app = PqApp(queue, lambda: T0, source="jobs.sqlite")  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = app.table.visible_ids()
        queue.broken = True
        app.request_refresh()
        await settle(pilot, timeout=3)  # an error that asks for another refresh never settles
        assert app.store_error is not None and "disk I/O error" in app.store_error
        assert app.table.visible_ids() == shown
        queue.broken = False
        app.request_refresh()
        await settle(pilot)
        assert app.store_error is None
