"""The dashboard against a store that fails in ways other than being busy, or that other
processes change under it."""

from __future__ import annotations

import os

import pytest

import pq_core
from pq_core import Status
from pq_tui.app import PqApp
from pq_tui.pilot import press, settle
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.detail import DetailScreen
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
        shown = app.dashboard.table.visible_ids()
        queue.broken = True
        app.dashboard.request_refresh()
        await settle(pilot, timeout=3)  # an error that asks for another refresh never settles
        error = app.dashboard.store_error
        assert error is not None and "disk I/O error" in error
        assert app.dashboard.table.visible_ids() == shown
        queue.broken = False
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.store_error is None


async def test_marked_jobs_another_process_removed_or_requeued(store, make_app, inspect):
    q = inspect(store)
    dead = [i.id for i in q.items("dead", limit=100, queue=None)]
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5", "space", "space", "space")
        assert set(app.dashboard.marks) == set(dead[:3])
        q.delete([dead[0]])  # another operator, meanwhile
        q.requeue([dead[1]])
        app.dashboard.request_refresh()
        await settle(pilot)
        await press(pilot, "r")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert app.dashboard.marks == {}
        assert app.dashboard.store_error is None
    assert q.item(dead[2]).status == Status.READY
    assert q.item(dead[1]).status == Status.READY
    with pytest.raises(pq_core.ItemNotFound):
        q.item(dead[0])


async def test_actions_on_a_highlighted_job_another_process_removed(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        gone = app.dashboard.table.highlighted_id
        q.delete([gone])  # between the last refresh and the keys
        await press(pilot, "enter")
        assert not isinstance(app.screen, DetailScreen)
        await press(pilot, "r", "y", "d", "y")
        assert not app.dialog_open
        await settle(pilot)
        assert gone not in app.dashboard.table.visible_ids()


@pytest.mark.parametrize("replace", [False, True])
async def test_a_store_file_removed_or_replaced_underneath_shows_as_an_error(store, replace):
    queue = pq_core.open(store, clock=lambda: T0)
    app = PqApp(queue, lambda: T0, source="jobs.sqlite", path=store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = app.dashboard.table.visible_ids()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.remove(store + suffix)
        if replace:
            pq_core.open(store).put("a job in a new store")
        app.dashboard.request_refresh()
        await settle(pilot)
        error = app.dashboard.store_error
        assert error is not None and "removed or replaced" in error
        assert app.dashboard.table.visible_ids() == shown
