"""Every key of the dashboard, driven headless, checked against the store afterwards."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

import pq_core
from pq_core import Status
from pq_tui.app import PqApp
from pq_tui.pilot import press, settle, type_text
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.detail import DetailScreen
from pq_tui.screens.help import HelpScreen
from pq_tui.screens.purge import PurgeScreen
from pq_tui.screenshots import ACTOR, SIZE, T0

HOSTILE_ID = 99  # the seed's newest job: dead, payload and error full of escape sequences


def plain(widget) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


def table_ids(app: PqApp) -> list[int]:
    return app.dashboard.table.visible_ids()


def store_ids(q: pq_core.Queue, status=None, **kw) -> list[int]:
    return [i.id for i in q.items(status, limit=100, queue=None, **kw)]


async def test_number_keys_filter_by_status(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert table_ids(app) == store_ids(q)
        for key, status in (("3", "in_progress"), ("4", "done"), ("5", "dead")):
            await press(pilot, key)
            assert table_ids(app) == store_ids(q, status), key
            assert {r.status for r in app.dashboard.snapshot.rows} == {Status(status)}
        await press(pilot, "2")  # ready: available now; the scheduled ones have their own key
        assert table_ids(app) == store_ids(q, "ready", scheduled=False)
        await press(pilot, "1")
        assert table_ids(app) == store_ids(q)


async def test_a_new_filter_keeps_the_cursor_on_its_job_or_goes_to_the_top(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = app.dashboard.snapshot.rows
        dead_at = next(n for n, r in enumerate(rows) if n and r.status == Status.DEAD)
        ready_at = next(n for n, r in enumerate(rows) if r.status == Status.READY)
        await press(pilot, *["j"] * dead_at)
        on = app.dashboard.table.highlighted_id  # a dead job: still there under "dead"
        await press(pilot, "5")
        assert app.dashboard.table.highlighted_id == on
        await press(pilot, "1")
        assert app.dashboard.table.highlighted_id == on
        await press(pilot, "g", *["j"] * ready_at)
        assert app.dashboard.table.cursor_row == ready_at  # a ready job: gone under "dead"
        await press(pilot, "5")
        assert app.dashboard.table.cursor_row == 0


async def test_slash_filters_by_text_and_escape_clears_it(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await type_text(pilot, "grace")
        await press(pilot, "enter")
        assert table_ids(app) == store_ids(q, search="grace")
        assert table_ids(app) and len(table_ids(app)) < len(store_ids(q))
        assert app.focused is app.dashboard.table
        await press(pilot, "escape")
        assert table_ids(app) == store_ids(q)


async def test_r_then_y_requeues_the_highlighted_job_and_records_who(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.dashboard.table.highlighted_id == HOSTILE_ID
        await press(pilot, "r")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.focused is not None and app.focused.id == "cancel"  # the safe choice
        await press(pilot, "y")
        assert not app.dialog_open
    job = q.item(HOSTILE_ID)
    assert job.status == Status.READY and job.attempts == 0
    event = q.events(1)[0]
    assert (event.kind, event.actor, event.job_ids) == ("requeue", ACTOR, (HOSTILE_ID,))


async def test_enter_confirms_too(store, make_app, inspect):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "r", "enter")
    assert inspect(store).item(HOSTILE_ID).status == Status.READY


async def test_space_marks_jobs_and_actions_apply_to_the_marked_ones(store, make_app, inspect):
    q = inspect(store)
    dead = store_ids(q, "dead")
    events_before = len(q.events(1000))
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5", "space", "space")
        assert set(app.dashboard.marks) == set(dead[:2])
        assert app.dashboard.table.highlighted_id == dead[2]  # space moves on to the next job
        assert str(app.dashboard.table.get_cell(str(dead[0]), "mark")) == "●"
        await press(pilot, "G", "space")  # marks the last (the last row: the cursor stays)
        assert set(app.dashboard.marks) == {*dead[:2], dead[-1]}
        await press(pilot, "space")  # and unmarks it again
        assert set(app.dashboard.marks) == set(dead[:2])
        await press(pilot, "r", "y")
        assert app.dashboard.marks == {}
    assert [q.item(i).status for i in dead] == [Status.READY] * 2 + [Status.DEAD] * (len(dead) - 2)
    # one requeue event per queue the marked jobs are in, together naming exactly those jobs
    new_events = q.events(1000)[: len(q.events(1000)) - events_before]
    assert {e.kind for e in new_events} == {"requeue"}
    assert {i for e in new_events for i in e.job_ids} == set(dead[:2])


async def test_d_then_y_deletes_for_good(store, make_app, inspect):
    q = inspect(store)
    before = q.count(queue=None)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "d", "y")
        assert HOSTILE_ID not in table_ids(app)
    with pytest.raises(pq_core.ItemNotFound):
        q.item(HOSTILE_ID)
    assert q.count(queue=None) == before - 1
    assert (q.events(1)[0].kind, q.events(1)[0].actor) == ("delete", ACTOR)


@pytest.mark.parametrize("keys", [("d", "n"), ("d", "escape"), ("r", "n"), ("r", "escape")])
async def test_n_or_escape_cancels_and_nothing_changes(keys, store, make_app, inspect):
    q = inspect(store)
    before = (q.item(HOSTILE_ID), q.count(queue=None), q.events(1))
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *keys)
        assert not app.dialog_open
    assert (q.item(HOSTILE_ID), q.count(queue=None), q.events(1)) == before


async def test_purge_dialog_counts_first_then_purges_after_confirmation(store, make_app, inspect):
    q = inspect(store)
    will_go = q.purge("10m", "done", queue=None, dry_run=True)
    assert will_go > 0 and q.purge("7d", "done", queue=None, dry_run=True) == 0
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "p")
        dialog = app.screen
        assert isinstance(dialog, PurgeScreen)
        count_line = plain(dialog.query_one("#purge-count"))
        assert "nothing to purge" in count_line
        await press(pilot, "enter")  # nothing to purge: enter does nothing
        assert app.screen is dialog
        await type_text(pilot, "10m", erase=2)
        assert f"Will remove {will_go} done jobs" in plain(dialog.query_one("#purge-count"))
        await press(pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert q.purge("10m", "done", queue=None, dry_run=True) == will_go  # not yet
        await press(pilot, "y")
    assert q.purge("10m", "done", queue=None, dry_run=True) == 0
    assert q.count("done", queue=None) > 0  # the younger ones stay
    purged = [e for e in q.events(10) if e.kind == "purge"]  # one event per queue
    assert {e.actor for e in purged} == {ACTOR}
    assert sum(e.count for e in purged) == will_go
    assert all(f"purged {e.count} done" in e.detail for e in purged)


async def test_purge_of_dead_jobs_and_a_bad_age(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "p", "shift+tab", "right", "space")  # the second status: dead
        dialog = app.screen
        await press(pilot, "tab")
        await type_text(pilot, "soon", erase=2)
        assert "not a duration" in plain(dialog.query_one("#purge-count"))
        await press(pilot, "enter")
        assert app.screen is dialog
        await type_text(pilot, "0", erase=4)
        dead = q.count("dead", queue=None)
        assert f"Will remove {dead} dead jobs" in plain(dialog.query_one("#purge-count"))
        await press(pilot, "enter", "y")
    assert q.count("dead", queue=None) == 0


async def test_purge_cancelled_in_the_dialog_or_at_confirmation(store, make_app, inspect):
    q = inspect(store)
    before = q.count("done", queue=None)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "p", "escape")
        assert not app.dialog_open
        await press(pilot, "p", "backspace", "backspace", "0", "enter", "n")
        assert not app.dialog_open
    assert q.count("done", queue=None) == before


async def test_requeue_is_disabled_on_a_ready_job(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        assert app.dashboard.check_action("requeue", ()) is None  # shown greyed out
        assert app.screen.active_bindings["r"].enabled is False
        await press(pilot, "r")
        assert not app.dialog_open
        assert app.dashboard.check_action("delete", ()) is True
    assert q.count("ready", queue=None) == len(store_ids(q, "ready"))


async def test_read_only_hides_and_refuses_every_change(store, make_app, inspect):
    q = inspect(store)
    before = (q.stats().counts, q.events(5))
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in ("r", "d", "p", "space", "a", "i", "R", "D", "n", "P"):
            assert key not in app.screen.active_bindings
            await press(pilot, key)
            assert not app.dialog_open and app.dashboard.marks == {}
        await press(pilot, "Q")  # the queues view: no pause either
        assert "P" not in app.screen.active_bindings
        await press(pilot, "j", "P", "escape")
        app.dashboard.action_requeue()  # even asked directly (as the palette would), it refuses
        app.dashboard.action_delete()
        app.dashboard.action_purge()
        await settle(pilot)
        assert not app.dialog_open
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Requeue jobs" not in titles and "Show dead jobs" in titles
    assert (q.stats().counts, q.events(5)) == before


async def test_enter_opens_the_whole_job_and_escape_closes_it(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.item.id == HOSTILE_ID
        payload = plain(detail.query_one("#payload"))
        assert "\\x1b[31mnot red\\x1b[0m" in payload and "[bold red]not markup[/]" in payload
        assert "\x1b" not in payload
        assert [e.kind for e in detail.item.history] == ["failed", "dead"]
        assert "attempt 2/2" in plain(detail.query_one("#history"))
        await press(pilot, "escape")
        assert not app.dialog_open


async def test_question_mark_opens_help(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        assert not app.dialog_open


async def test_q_quits(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
    assert not app.is_running


async def test_s_reverses_the_order(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "s")
        assert table_ids(app) == store_ids(q, newest_first=False)


async def test_command_palette_lists_the_actions(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Requeue jobs", "Delete jobs", "Purge jobs", "Filter by text"} <= titles
        await press(pilot, "ctrl+p")
        assert app.dialog_open
        await type_text(pilot, "purge jobs")
        await press(pilot, "enter")
        assert isinstance(app.screen, PurgeScreen)


async def test_cursor_and_marks_stay_on_their_jobs_across_refreshes(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "down", "down", "down", "space")
        marked, under_cursor = table_ids(app)[3], table_ids(app)[4]
        assert app.dashboard.table.highlighted_id == under_cursor
        new = pq_core.open(store, queue="emails", clock=lambda: T0).put_many(["a", "b", "c"])
        app.dashboard.request_refresh()
        await settle(pilot)
        assert table_ids(app)[:3] == sorted(new, reverse=True)
        assert app.dashboard.table.highlighted_id == under_cursor
        assert app.dashboard.table.cursor_row == 7
        assert set(app.dashboard.marks) == {marked}
        assert str(app.dashboard.table.get_cell(str(marked), "mark")) == "●"


async def test_until_moved_the_cursor_follows_the_newest_job(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        new = pq_core.open(store, queue="emails", clock=lambda: T0).put("newest")
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.table.highlighted_id == new and app.dashboard.table.cursor_row == 0
        await press(pilot, "down", "up")  # touched: from now on it stays on its job
        newer = pq_core.open(store, queue="emails", clock=lambda: T0).put("newer")
        app.dashboard.request_refresh()
        await settle(pilot)
        assert table_ids(app)[0] == newer
        assert app.dashboard.table.highlighted_id == new and app.dashboard.table.cursor_row == 1


async def test_no_refresh_lands_while_a_dialog_is_open(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = table_ids(app)
        await press(pilot, "question_mark")
        new = pq_core.open(store, queue="emails", clock=lambda: T0).put("late")
        app.dashboard.request_refresh()
        await settle(pilot)
        assert table_ids(app) == shown
        await press(pilot, "escape")
        assert table_ids(app)[0] == new


class LockableQueue:
    """A queue whose reads can be made to fail as a store locked past its busy timeout."""

    def __init__(self, queue: pq_core.Queue) -> None:
        self._queue = queue
        self.locked = False

    def stats(self):
        if self.locked:
            raise pq_core.StoreLocked("jobs.sqlite: store is locked by another process")
        return self._queue.stats()

    def __getattr__(self, name):
        return getattr(self._queue, name)


async def test_a_locked_store_shows_busy_and_keeps_the_last_data(store):
    queue = LockableQueue(pq_core.open(store, clock=lambda: T0))
    now = [T0]
    app = PqApp(queue, lambda: now[0], source="jobs.sqlite")  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = table_ids(app)
        queue.locked = True
        now[0] = T0 + 12
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.store_error == "store busy"
        state = plain(app.query_one("#status-bar"))
        assert "store busy" in state and "showing data from 12s ago" in state
        assert table_ids(app) == shown
        queue.locked = False
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.store_error is None
        assert "live" in plain(app.query_one("#status-bar"))


async def test_the_window_of_jobs_follows_the_cursor_through_a_big_store(tmp_path, make_app):
    path = str(tmp_path / "big.sqlite")
    q = pq_core.open(path, clock=lambda: T0)
    ids = q.put_many([f"job {n}" for n in range(1000)])
    newest_first = sorted(ids, reverse=True)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.dashboard.table.row_count == 100
        for _ in range(4):
            await press(pilot, "ctrl+end")  # the bottom of the window: it moves on
        position = app.dashboard.view.offset + app.dashboard.table.cursor_row
        assert app.dashboard.view.offset > 200 and app.dashboard.table.row_count == 100
        assert app.dashboard.table.highlighted_id == newest_first[position]
        await press(pilot, "G")
        assert app.dashboard.table.highlighted_id == ids[0]  # the oldest job
        assert app.dashboard.view.offset == 900
        await press(pilot, "g")
        assert app.dashboard.table.highlighted_id == newest_first[0]
        assert app.dashboard.view.offset == 0
    q.close()


async def test_a_scoped_dashboard_shows_and_purges_only_its_queue(store, make_app, inspect):
    q = inspect(store)
    dead_elsewhere = q.count("dead", queue="emails")
    assert q.count("dead", queue="reports") and dead_elsewhere
    app = make_app(store, scope="reports")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert table_ids(app) == [i.id for i in q.items(queue="reports")]
        assert [qs.queue for qs in app.dashboard.snapshot.queues] == ["reports"]
        await press(pilot, "p", "shift+tab", "right", "space", "tab", "backspace", "backspace")
        await press(pilot, "0")
        await press(pilot, "enter", "y")
    assert q.count("dead", queue="reports") == 0
    assert q.count("dead", queue="emails") == dead_elsewhere
