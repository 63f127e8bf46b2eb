"""The operator's repair tools: scheduled jobs and run now, the errors view, bulk actions on
everything that matches, the queues view with pause and resume, and what workers hold. Each
drives the dashboard headless and checks the store afterwards through pq_core's API."""

from __future__ import annotations

from test_keys import plain, store_ids, table_ids

from pq_core import Status
from pq_tui.pilot import press, settle
from pq_tui.screens.confirm import ConfirmScreen
from pq_tui.screens.errors import ErrorsScreen
from pq_tui.screens.queues import EVERY_QUEUE, QueuesScreen
from pq_tui.screenshots import ACTOR, SIZE, T0


async def test_scheduled_jobs_are_shown_counted_and_filtered_apart_and_run_now(
    store, make_app, inspect
):
    q = inspect(store)
    scheduled = store_ids(q, "ready", scheduled=True)
    assert len(scheduled) >= 3  # the seed's delayed digests and report, and backing-off jobs
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = {r.id: r for r in app.dashboard.snapshot.rows}
        newest = rows[max(scheduled)]
        assert str(newest.cells[2]) == "scheduled" and str(newest.cells[3]).startswith("in ")
        summary = plain(app.dashboard.query_one("#summary"))
        assert "scheduled" in summary.splitlines()[0]
        await press(pilot, "6")
        assert table_ids(app) == scheduled  # soonest first
        assert app.dashboard.snapshot.total == q.count("ready", queue=None, scheduled=True)
        first = table_ids(app)[0]
        await press(pilot, "n")  # run now: no question, nothing is lost
        assert first not in table_ids(app)
        await press(pilot, "2")
        assert first in table_ids(app)
    assert first not in store_ids(q, "ready", scheduled=True)
    assert first in store_ids(q, "ready", scheduled=False)
    assert q.item(first).available_at.timestamp() <= T0
    event = q.events(1)[0]
    assert (event.kind, event.actor, event.job_ids) == ("run_now", ACTOR, (first,))


async def test_run_now_is_off_on_a_job_that_is_not_ready(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        assert app.dashboard.check_action("run_now", ()) is None
        await press(pilot, "n")
    assert q.count("dead", queue=None) == len(store_ids(q, "dead"))
    assert Status.DEAD in {q.item(i).status for i in store_ids(q, "dead")}


async def test_the_errors_view_groups_failures_and_enter_shows_a_group(store, make_app, inspect):
    q = inspect(store)
    groups = q.errors(queue=None)
    assert len(groups) >= 4
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        screen = app.screen
        assert isinstance(screen, ErrorsScreen)
        signatures = [g.signature for g in groups]
        assert screen.reads and [screen.key(r) for r in screen.rows] == signatures
        shown = screen.table.get_row(groups[0].signature)
        assert str(shown[0]) == str(groups[0].count)
        assert "…" not in str(shown[-1])[:2]  # the example's meaningful line, not a traceback
        group = next(g for g in groups if g.dead)
        await press(pilot, "g", *["j"] * signatures.index(group.signature))
        await press(pilot, "enter")
        assert app.screen is app.dashboard
        assert app.dashboard.view.error == group.signature
        ids = store_ids(q, error=group.signature)
        assert table_ids(app) == ids and len(ids) == group.count
        assert "with error" in str(app.dashboard.table.border_title)
        dead = next(i for i in ids if q.item(i).status == Status.DEAD)
        await press(pilot, "g", *["j"] * ids.index(dead), "r", "y")  # a job action, in the group
        assert dead not in table_ids(app)
        await press(pilot, "escape")  # every job again
        assert app.dashboard.view.error is None and dead in table_ids(app)
    assert q.item(dead).status == Status.READY
    assert dead not in store_ids(q, error=group.signature)


async def test_bulk_requeue_takes_every_matching_job_with_the_exact_count(store, make_app, inspect):
    q = inspect(store)
    dead = store_ids(q, "dead")
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5", "R")
        assert isinstance(app.screen, ConfirmScreen)
        question = plain(app.screen.query_one("#question"))
        assert f"all {len(dead)} jobs" in question and "dead jobs in every queue" in question
        await press(pilot, "y")
        assert table_ids(app) == []
    assert q.count("dead", queue=None) == 0
    assert all(q.item(i).status == Status.READY for i in dead)


async def test_bulk_delete_of_an_error_group_in_a_text_search(store, make_app, inspect):
    q = inspect(store)
    group = q.errors(queue=None)[0]
    members = store_ids(q, error=group.signature)
    others = q.count(queue=None) - len(members)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "e", "enter", "D")
        question = plain(app.screen.query_one("#question"))
        assert f"all {len(members)} jobs" in question and "with the error" in question
        await press(pilot, "n")  # cancelled: nothing changes
        assert q.count(queue=None) == others + len(members)
        await press(pilot, "D", "y")
    assert q.count(queue=None) == others
    assert q.count(queue=None, error=group.signature) == 0


async def test_mark_all_shown_and_invert_marks(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5", "a")
        dead = table_ids(app)
        assert set(app.dashboard.marks) == set(dead)
        await press(pilot, "g", "space", "i")  # unmark the first, then invert: only it
        assert set(app.dashboard.marks) == {dead[0]}
        await press(pilot, "d", "y")
    assert q.count("dead", queue=None) == len(dead) - 1
    assert dead[0] not in store_ids(q)


async def test_the_queues_view_scopes_the_dashboard_and_pauses_and_resumes(
    store, make_app, inspect
):
    q = inspect(store)
    names = list(q.stats().queues)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "Q")
        screen = app.screen
        assert isinstance(screen, QueuesScreen)
        assert [screen.key(r) for r in screen.rows] == [EVERY_QUEUE, *names]
        assert screen.highlighted == EVERY_QUEUE
        row = screen.table.get_row("webhooks")
        webhooks = q.stats()["webhooks"]
        assert [str(c) for c in row[1:3]] == [str(webhooks.available), str(webhooks.scheduled)]
        await press(pilot, "g", *["j"] * (names.index("webhooks") + 1), "P")
        assert q.stats()["webhooks"].paused
        assert str(screen.table.get_row("webhooks")[-1]) == "paused"
        await press(pilot, "enter")
        assert app.screen is app.dashboard and app.dashboard.view.scope == "webhooks"
        assert table_ids(app) == [i.id for i in q.items(limit=100, queue="webhooks")]
        assert "webhooks paused" in plain(app.dashboard.query_one("#summary"))
        await press(pilot, "P")  # on the dashboard: the queue shown
        assert not q.stats()["webhooks"].paused
        await press(pilot, "Q", "g", "enter")  # the first row: every queue again
        assert app.dashboard.view.scope is None
        assert table_ids(app) == store_ids(q)
    kinds = [e.kind for e in q.events(2, queue="webhooks")]
    assert kinds == ["resume", "pause"]


async def test_workers_show_the_jobs_they_hold_since_when_and_done_last_minute(
    store, make_app, inspect
):
    q = inspect(store)
    busy = next(w for w in q.workers() if w.jobs)
    app = make_app(store)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        lines = plain(app.dashboard.query_one("#workers")).splitlines()
        assert lines[0].split() == ["worker", "queue", "job", "for", "done", "heard"]
        line = next(x for x in lines if x.split()[1].startswith(busy.id.split(":")[0]))
        held = f"{min(busy.jobs)} +{len(busy.jobs) - 1}" if len(busy.jobs) > 1 else ""
        assert held in line
        since = int(T0 - busy.busy_since.timestamp())
        assert f"{since // 60}m{since % 60:02d}s" in line
        assert f" {busy.done_last_minute} " in line
