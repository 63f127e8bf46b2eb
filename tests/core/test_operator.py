"""Operator calls (SPEC 2 and 3): stats, items, item, requeue, delete, purge, events, workers."""

from __future__ import annotations

import sqlite3

import pytest

import pq_core
from pq_core import Status, identity

from .conftest import FakeClock, OpenQueue, TracedStore

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue


def one_of_each(q: pq_core.Queue, clock: FakeClock) -> dict[Status, int]:
    """Four jobs: one ready, one in progress, one done, one dead."""
    done, dead, held, ready = q.put_many(["done", "dead", "held", "ready"], max_attempts=1)
    q.done(q.get())
    q.fail(q.get(), "gave up")
    q.get()
    return {Status.READY: ready, Status.IN_PROGRESS: held, Status.DONE: done, Status.DEAD: dead}


# -- stats ---------------------------------------------------------------------------------------


def test_stats_counts_jobs_per_status_per_queue(open_queue: OpenQueue, clock: FakeClock) -> None:
    q, other = open_queue(), open_queue("other")
    one_of_each(q, clock)
    other.put_many(["a", "b"])
    stats = q.stats()
    mine = stats[q.name]
    assert mine.counts == {Status.READY: 1, Status.IN_PROGRESS: 1, Status.DONE: 1, Status.DEAD: 1}
    assert (mine.in_flight, mine.total) == (1, 4)
    assert stats[other.name].counts[Status.READY] == 2
    assert stats.at.timestamp() == clock()


def test_stats_counts_across_queues_add_up(db: str) -> None:
    a, b = pq_core.open(db, queue="a"), pq_core.open(db, queue="b")
    a.put("x")
    b.put_many(["y", "z"])
    b.get()
    assert a.stats().counts == {
        Status.READY: 2,
        Status.IN_PROGRESS: 1,
        Status.DONE: 0,
        Status.DEAD: 0,
    }


def test_stats_of_an_empty_queue_is_all_zero(queue: pq_core.Queue) -> None:
    mine = queue.stats()[queue.name]
    assert mine.counts == dict.fromkeys(Status, 0)
    assert mine.oldest_ready_age is None


def test_stats_gives_the_age_of_the_oldest_ready_job(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    queue.put("old")
    clock.advance(30)
    queue.put("new")
    clock.advance(15)
    assert queue.stats()[queue.name].oldest_ready_age == pytest.approx(45)
    queue.done(queue.get())
    assert queue.stats()[queue.name].oldest_ready_age == pytest.approx(15)


def test_stats_gives_jobs_done_per_minute_for_the_last_half_hour(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    clock.now = 60 * 1_000_000 + 5  # 5 s into a minute
    queue.put_many(range(5))
    for _ in range(3):
        queue.done(queue.get())
    clock.advance(60)
    for _ in range(2):
        queue.done(queue.get())
    spark = queue.stats()[queue.name].done_per_minute
    assert len(spark) == 30
    assert spark[-2:] == (3, 2)
    assert sum(spark) == 5
    clock.advance(31 * 60)
    assert sum(queue.stats()[queue.name].done_per_minute) == 0


def test_stats_reads_counters_and_indexes_without_scanning_the_jobs(db: str) -> None:
    store = TracedStore(db)
    statements = store.statements
    q = pq_core.Queue(store)
    q.put_many(range(100))
    q.done_many(q.get_many(50))
    statements.clear()
    q.stats()
    plain = sqlite3.connect(db)
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            plan = " / ".join(row[-1] for row in plain.execute("EXPLAIN QUERY PLAN " + sql))
            assert not plan.startswith("SCAN jobs"), f"stats() scans the jobs: {sql} → {plan}"
    plain.close()
    q.close()


# -- items and item ------------------------------------------------------------------------------


def test_items_lists_newest_first_and_pages(queue: pq_core.Queue) -> None:
    ids = queue.put_many(range(10))
    assert [i.id for i in queue.items()] == ids[::-1]
    assert [i.id for i in queue.items(limit=3)] == ids[:-4:-1]
    assert [i.id for i in queue.items(limit=3, offset=3)] == ids[-4:-7:-1]
    assert [i.id for i in queue.items(newest_first=False, limit=2)] == ids[:2]


def test_items_filters_by_status(queue: pq_core.Queue, clock: FakeClock) -> None:
    ids = one_of_each(queue, clock)
    for status, job_id in ids.items():
        assert [i.id for i in queue.items(status=status)] == [job_id]
        assert [i.id for i in queue.items(status=status.value.upper())] == [job_id]
    both = queue.items(status=["done", "dead"])
    assert {i.id for i in both} == {ids[Status.DONE], ids[Status.DEAD]}
    assert [i.id for i in queue.items(status="processed")] == [ids[Status.DONE]]


def test_items_of_one_queue_or_of_every_queue(open_queue: OpenQueue) -> None:
    q, other = open_queue(), open_queue("other")
    mine, theirs = q.put("mine"), other.put("theirs")
    assert [i.id for i in q.items()] == [mine]
    everything = {i.id for i in q.items(queue=None)}
    assert {mine, theirs} <= everything


def test_items_finds_jobs_by_text(queue: pq_core.Queue) -> None:
    queue.put({"to": "alice@example.com"})
    bob = queue.put({"to": "bob@example.com"})
    queue.put("100% sure")
    assert [i.id for i in queue.items(search="bob@")] == [bob]
    assert [i.payload for i in queue.items(search="100%")] == ["100% sure"]
    assert queue.items(search="_") == []


def test_item_has_its_history_of_events_oldest_first(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=3)
    queue.fail(queue.get(), "first failure")
    clock.advance(10)
    queue.get(lease=5)
    clock.advance(6)
    pq_core.Manager(queue).sweep()
    queue.done(queue.get())
    queue.requeue([job_id], actor="ops@test")
    history = queue.item(job_id).history
    assert [e.kind for e in history] == ["failed", "requeue", "requeue"]
    assert "first failure" in history[0].detail
    assert history[-1].actor == "ops@test"
    assert [e.at for e in history] == sorted(e.at for e in history)


def test_item_of_an_unknown_id_raises_item_not_found(queue: pq_core.Queue) -> None:
    with pytest.raises(pq_core.ItemNotFound, match="12345") as caught:
        queue.item(12345)
    assert isinstance(caught.value, KeyError)


# -- requeue -------------------------------------------------------------------------------------


def test_requeue_puts_done_dead_and_in_progress_jobs_back_with_attempts_reset(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    ids = one_of_each(queue, clock)
    assert queue.requeue(list(ids.values())) == 3  # the ready one is left as it is
    for job_id in ids.values():
        item = queue.item(job_id)
        assert item.status is Status.READY and item.attempts == 0
        assert item.lease_expires_at is None
    assert len(queue.get_many(10)) == 4


def test_requeue_may_keep_the_attempts(queue: pq_core.Queue) -> None:
    job_id = queue.put("x", max_attempts=1)
    queue.fail(queue.get(), "boom")
    assert queue.requeue(job_id, reset_attempts=False) == 1
    assert queue.item(job_id).attempts == 1


def test_requeue_takes_ids_or_items_and_ignores_unknown_ids(queue: pq_core.Queue) -> None:
    a, b = queue.put_many(["a", "b"])
    queue.done_many(queue.get_many(2))
    assert queue.requeue([queue.item(a), str(b), 999_999]) == 2


def test_requeue_is_recorded_with_who_did_it(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    queue.done(queue.get())
    queue.requeue([job_id])
    [event] = queue.events(queue=queue.name)
    assert (event.kind, event.count, event.job_ids) == ("requeue", 1, (job_id,))
    assert event.actor == identity.user()


def test_requeue_of_a_job_whose_dedup_key_went_to_a_newer_job_keeps_the_newer_one_live(
    queue: pq_core.Queue,
) -> None:
    old = queue.put("old", dedup_key="k")
    queue.done(queue.get())
    new = queue.put("new", dedup_key="k")
    assert queue.requeue([old]) == 1
    assert queue.item(old).status is Status.READY
    assert queue.put("again", dedup_key="k") == new


def test_requeue_and_delete_are_recorded_under_each_jobs_own_queue(
    open_queue: OpenQueue,
) -> None:
    emails, reports = open_queue("emails"), open_queue("reports")
    mail, report = emails.put("mail"), reports.put("report")
    emails.done(emails.get())
    reports.done(reports.get())
    assert emails.requeue([mail, report]) == 2  # an operator's queue object reaches every job
    assert [e.job_ids for e in emails.events(queue=reports.name)] == [(report,)]
    assert emails.delete([report]) == 1
    kinds = [(e.kind, e.job_ids) for e in emails.events(queue=reports.name)]
    assert kinds == [("delete", (report,)), ("requeue", (report,))]
    assert [e.job_ids for e in emails.events(queue=emails.name)] == [(mail,)]


# -- delete and purge ----------------------------------------------------------------------------


def test_delete_removes_jobs_for_good(queue: pq_core.Queue, clock: FakeClock) -> None:
    ids = one_of_each(queue, clock)
    assert queue.delete([ids[Status.DONE], ids[Status.IN_PROGRESS], 999_999]) == 2
    with pytest.raises(pq_core.ItemNotFound):
        queue.item(ids[Status.DONE])
    assert queue.stats()[queue.name].total == 2
    [event] = [e for e in queue.events(queue=queue.name) if e.kind == "delete"]
    assert event.count == 2
    assert sorted(event.job_ids) == sorted([ids[Status.DONE], ids[Status.IN_PROGRESS]])


def test_purge_removes_jobs_of_a_status_older_than_an_age(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    old = queue.put_many(range(3))
    queue.done_many(queue.get_many(3))
    clock.advance(8 * 86400)
    new = queue.put("new")
    queue.done(queue.get())
    queue.put("ready, old enough but not done")
    clock.advance(3600)
    assert queue.purge(older_than=7 * 86400, status="done", dry_run=True) == 3
    assert queue.stats()[queue.name].counts[Status.DONE] == 4
    assert queue.purge(older_than=7 * 86400, status="done") == 3
    for job_id in old:
        with pytest.raises(pq_core.ItemNotFound):
            queue.item(job_id)
    assert queue.item(new).status is Status.DONE
    assert queue.stats()[queue.name].counts == {
        Status.READY: 1,
        Status.IN_PROGRESS: 0,
        Status.DONE: 1,
        Status.DEAD: 0,
    }
    [event] = [e for e in queue.events(queue=queue.name) if e.kind == "purge"]
    assert "purged 3 done job(s)" in event.detail and event.count == 3


def test_purge_defaults_to_done_jobs_of_this_queue(open_queue: OpenQueue) -> None:
    q, other = open_queue(), open_queue("other")
    for each in (q, other):
        each.put("x")
        each.done(each.get())
    q.put("dead", max_attempts=1)
    q.fail(q.get(), "boom")
    assert q.purge() == 1
    assert other.stats()[other.name].counts[Status.DONE] == 1
    assert q.stats()[q.name].counts[Status.DEAD] == 1


def test_purge_of_dead_jobs(queue: pq_core.Queue) -> None:
    queue.put("x", max_attempts=1)
    queue.fail(queue.get(), "boom")
    assert queue.purge(0, "dead") == 1
    assert queue.stats()[queue.name].total == 0


def test_a_dry_run_purge_removes_nothing_and_records_nothing(queue: pq_core.Queue) -> None:
    queue.put("x")
    queue.done(queue.get())
    assert queue.purge(dry_run=True) == 1
    assert queue.stats()[queue.name].counts[Status.DONE] == 1
    assert queue.events(queue=queue.name) == []


# -- events and workers --------------------------------------------------------------------------


def test_events_are_newest_first_and_page(queue: pq_core.Queue) -> None:
    ids = queue.put_many(range(3))
    queue.done_many(queue.get_many(3))
    for job_id in ids:
        queue.requeue(job_id)
    events = queue.events(queue=queue.name)
    assert [e.job_ids for e in events] == [(i,) for i in reversed(ids)]
    assert [e.job_ids for e in queue.events(limit=1, offset=1, queue=queue.name)] == [(ids[1],)]
    assert events[0].at.tzinfo is not None


def test_workers_lists_a_consumer_once_it_claims_and_forgets_it_after_close(
    open_queue: OpenQueue,
) -> None:
    q, watcher = open_queue(), open_queue()
    assert [w for w in watcher.workers() if w.queue == q.name] == []
    q.put("x")
    q.get()
    [worker] = [w for w in watcher.workers() if w.queue == q.name]
    assert worker.kind == "consumer" and worker.alive
    assert worker.pid == identity.os.getpid() and worker.host == identity.HOST
    q.close()  # a clean stop leaves no registration behind
    assert [w for w in watcher.workers() if w.queue == q.name] == []


def test_a_queue_used_again_after_close_shows_its_consumer_alive_again(
    open_queue: OpenQueue,
) -> None:
    q, watcher = open_queue(), open_queue()
    q.put_many(["a", "b"])
    q.done(q.get())
    q.close()
    assert [w.alive for w in watcher.workers() if w.queue == q.name] == []
    q.done(q.get())
    assert [w.alive for w in watcher.workers() if w.queue == q.name] == [True]


def test_a_busy_consumer_is_heard_from_while_it_keeps_claiming(
    open_queue: OpenQueue, clock: FakeClock
) -> None:
    q, watcher = open_queue(), open_queue()
    q.put_many(["a", "b", "c"])
    q.done(q.get())
    [before] = [w.last_seen for w in watcher.workers() if w.queue == q.name]
    clock.advance(60)
    q.done(q.get())  # claims that find work still count as signs of life
    [after] = [w.last_seen for w in watcher.workers() if w.queue == q.name]
    assert (after - before).total_seconds() == 60


def test_scheduled_jobs_list_soonest_first_and_page_after_a_job(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    late, soon, soonest = (
        queue.put(n, delay=d) for n, d in (("late", 300), ("soon", 60), ("soonest", 5))
    )
    queue.put("now")
    assert [i.id for i in queue.items(scheduled=True)] == [soonest, soon, late]
    assert [i.id for i in queue.items(scheduled=True, after_id=soonest)] == [soon, late]
    assert [i.id for i in queue.items(scheduled=True, newest_first=False)] == [late, soon, soonest]
    clock.advance(61)
    assert [i.id for i in queue.items(scheduled=True)] == [late]


def test_a_window_of_ids_bounds_a_listing_and_a_count(queue: pq_core.Queue) -> None:
    ids = queue.put_many([f"job {n}" for n in range(10)])
    window = (ids[2], ids[5])
    assert [i.id for i in queue.items(search="job", id_range=window)] == ids[5:1:-1]
    assert queue.count(search="job", id_range=window) == 4
    with pytest.raises(pq_core.InvalidValue, match="id_range"):
        queue.items(id_range=(1,))  # type: ignore[arg-type]


# -- pause and resume ----------------------------------------------------------------------------


def test_a_paused_queue_hands_out_nothing_takes_puts_and_shows_paused(
    open_queue: OpenQueue,
) -> None:
    q, other, operator = open_queue(), open_queue("other"), open_queue("ops")
    q.put("a")
    other.put("b")
    assert operator.pause(queue=q.name, actor="pq ada@laptop") is True  # another queue, by name
    assert operator.pause(queue=q.name) is False  # already paused: nothing changed
    assert q.is_paused() and operator.is_paused(queue=q.name) and not other.is_paused()
    assert q.get() is None and q.get_many(5) == []  # no consumer of it gets a job
    assert q.put("c") > 0  # puts still succeed
    assert other.get().payload == "b"  # other queues carry on
    stats = q.stats()
    assert stats[q.name].paused and not stats[other.name].paused
    assert stats[q.name].counts[Status.READY] == 2
    assert q.resume() is True and q.resume() is False
    assert [i.payload for i in q.get_many(5)] == ["a", "c"]
    kinds = [(e.kind, e.queue) for e in q.events(queue=q.name)]
    assert kinds == [("resume", q.name), ("pause", q.name)]
    with pytest.raises(pq_core.InvalidValue):
        operator.pause(queue="")
