"""A job's detail view: the whole error, kept live, and its own keys (r, d, y, Y, e)."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

import pq_core
from pq_core import Status
from pq_tui.app import PqApp
from pq_tui.display import payload_text
from pq_tui.pilot import press, settle
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.detail import DetailScreen
from pq_tui.screenshots import ACTOR, SIZE, T0, Clock


def plain(widget) -> str:
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


def traceback_job(q: pq_core.Queue) -> pq_core.Item:
    """The seed's dead thumbnail, whose error is a whole traceback."""
    return next(i for i in q.items("dead", queue=None) if "Traceback" in (i.last_error or ""))


async def open_job(pilot, app: PqApp, job_id: int) -> DetailScreen:
    """Put the cursor on `job_id` (under "dead") and open it."""
    await press(pilot, "5")
    while app.dashboard.table.highlighted_id != job_id:
        await press(pilot, "j")
    await press(pilot, "enter")
    assert isinstance(app.screen, DetailScreen)
    return app.screen


async def reread(pilot, detail: DetailScreen) -> None:
    before = detail.reads
    detail.reread()
    await settle(pilot)
    assert detail.reads > before


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def app_at(clock):
    def make(path: str, *, read_only: bool = False) -> PqApp:
        q = pq_core.open(path, read_only=read_only, clock=clock)
        return PqApp(
            q, clock, source="jobs.sqlite", actor=ACTOR, read_only=read_only, refresh_every=0
        )

    return make


async def test_the_detail_shows_the_whole_error_and_keeps_ticking(store, app_at, clock, inspect):
    q = inspect(store)
    job = traceback_job(q)
    app = app_at(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = await open_job(pilot, app, job.id)
        error = plain(detail.query_one("#error"))
        assert "Traceback (most recent call last):" in error
        assert "PIL.UnidentifiedImageError: cannot identify image file" in error
        assert 'File "/srv/app/thumbs/worker.py", line 88' in error
        fields = plain(detail.query_one("#fields"))
        assert "(10m10s ago)" in fields  # created at T0 - 610
        clock.at(T0 + 65)
        await reread(pilot, detail)
        assert "(11m15s ago)" in plain(detail.query_one("#fields"))


async def test_the_detail_shows_a_change_made_elsewhere(store, app_at, inspect):
    q = inspect(store)
    job = traceback_job(q)
    app = app_at(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = await open_job(pilot, app, job.id)
        assert "dead" in str(detail.query_one("#detail").border_title)
        q.requeue([job.id], actor="someone else")
        await reread(pilot, detail)
        assert detail.item.status == Status.READY
        assert "ready" in str(detail.query_one("#detail").border_title)
        assert "someone else" in plain(detail.query_one("#history"))
        assert detail.check_action("requeue", ()) is None  # ready: nothing to requeue
        q.delete([job.id])
        await reread(pilot, detail)
        assert detail.gone and "gone" in str(detail.query_one("#detail").border_title)
        assert detail.check_action("delete", ()) is None


async def test_r_in_the_detail_requeues_after_confirmation(store, app_at, inspect):
    q = inspect(store)
    job = traceback_job(q)
    app = app_at(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = await open_job(pilot, app, job.id)
        await press(pilot, "r")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert app.screen is detail
        assert detail.item.status == Status.READY  # shown at once, not at the next tick
    assert q.item(job.id).status == Status.READY
    event = q.events(1)[0]
    assert (event.kind, event.actor, event.job_ids) == ("requeue", ACTOR, (job.id,))


async def test_d_in_the_detail_deletes_and_goes_back_to_the_jobs(store, app_at, inspect):
    q = inspect(store)
    job = traceback_job(q)
    app = app_at(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_job(pilot, app, job.id)
        await press(pilot, "d", "n")  # cancelled: nothing happens
        assert isinstance(app.screen, DetailScreen)
        await press(pilot, "d", "y")
        assert app.screen is app.dashboard
        assert job.id not in app.dashboard.table.visible_ids()
    with pytest.raises(pq_core.ItemNotFound):
        q.item(job.id)


async def test_y_shift_y_and_e_copy_from_the_detail(store, app_at, inspect):
    q = inspect(store)
    job = traceback_job(q)
    app = app_at(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_job(pilot, app, job.id)
        await press(pilot, "y")
        assert app.clipboard == str(job.id)
        await press(pilot, "Y")
        assert app.clipboard == payload_text(job.payload)
        await press(pilot, "e")
        assert app.clipboard == job.last_error


async def test_the_detail_footer_shows_only_keys_that_work_there(store, app_at, inspect):
    q = inspect(store)
    job = traceback_job(q)
    for read_only in (False, True):
        app = app_at(store, read_only=read_only)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            detail = await open_job(pilot, app, job.id)
            shown = {
                key
                for key, active in detail.active_bindings.items()
                if active.binding.show and active.enabled
            }
            expected = {"y", "Y", "e", "escape", "q"} | (set() if read_only else {"r", "d"})
            assert shown == expected
            for key in ("1", "5", "space", "p", "slash"):  # the dashboard's keys are not here
                assert key not in detail.active_bindings
            await press(pilot, "escape")
            assert app.screen is app.dashboard


class FlakyQueue:
    """A queue whose job reads can be made to fail as a driver error pq_core did not wrap."""

    def __init__(self, queue: pq_core.Queue) -> None:
        self._queue = queue
        self.broken = False

    def item(self, item_id: int):
        if self.broken:
            raise RuntimeError("disk I/O error")
        return self._queue.item(item_id)

    def __getattr__(self, name):
        return getattr(self._queue, name)


async def test_a_read_that_fails_keeps_the_job_shown_and_says_why(store, clock):
    raw = pq_core.open(store, clock=clock)
    job = traceback_job(raw)
    queue = FlakyQueue(raw)
    app = PqApp(queue, clock, source="jobs.sqlite", refresh_every=0)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = await open_job(pilot, app, job.id)
        queue.broken = True
        await reread(pilot, detail)
        assert not detail.gone and "disk I/O error" in detail.store_error
        assert detail.item.id == job.id and "PIL" in plain(detail.query_one("#error"))
        assert detail.check_action("requeue", ()) is True
        queue.broken = False
        await reread(pilot, detail)  # one answer per read: it reads again when asked
        assert detail.store_error == ""
