"""Consumer calls (SPEC 2 and 3): claim, lease, done, fail, heartbeat, claim(), consume()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import pytest

import pq_core
from pq_core import Status

from .conftest import FakeClock, OpenQueue, TracedStore

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue


def claim_one(q: pq_core.Queue, **options: object) -> pq_core.Item:
    item = q.get(**options)
    assert item is not None, "expected a ready job"
    return item


# -- get -----------------------------------------------------------------------------------------


def test_get_returns_none_at_once_when_nothing_is_ready(queue: pq_core.Queue) -> None:
    started = time.monotonic()
    assert queue.get() is None
    assert time.monotonic() - started < 5


def test_a_claim_moves_ready_to_in_progress_and_counts_an_attempt(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    item = claim_one(queue)
    assert item.id == job_id
    assert item.status is Status.IN_PROGRESS
    assert item.attempts == 1
    assert item.token
    assert item.worker
    assert item.lease_expires_at.timestamp() == clock() + 300  # the default lease
    stored = queue.item(job_id)
    assert stored.status is Status.IN_PROGRESS and stored.attempts == 1


def test_a_job_is_handed_to_one_claim_only(queue: pq_core.Queue) -> None:
    queue.put("only one")
    assert queue.get() is not None
    assert queue.get() is None


def test_get_with_a_lease_holds_the_job_that_long(queue: pq_core.Queue, clock: FakeClock) -> None:
    queue.put("x")
    item = claim_one(queue, lease=42)
    assert item.lease_expires_at.timestamp() == clock() + 42


def test_the_queue_default_lease_comes_from_open(open_queue: OpenQueue, clock: FakeClock) -> None:
    q = open_queue(lease="2m")
    q.put("x")
    assert claim_one(q).lease_expires_at.timestamp() == clock() + 120


def test_get_with_a_timeout_returns_none_when_nothing_arrives(queue: pq_core.Queue) -> None:
    started = time.monotonic()
    assert queue.get(timeout=0.3) is None
    assert time.monotonic() - started >= 0.3


def test_get_with_a_timeout_is_woken_by_a_put_from_another_process(db: str) -> None:
    q = pq_core.open(db)
    q.put("warm up")
    q.done(claim_one(q))
    producer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time, pq_core
                q = pq_core.open({db!r})
                time.sleep(1.0)
                q.put("wake up")
                """
            ),
        ]
    )
    try:
        cpu, wall = time.process_time(), time.monotonic()
        item = q.get(timeout=60)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert item is not None and item.payload == "wake up"
        assert wall < 30, "woken long after the put"
        assert cpu < wall / 2 + 0.2, f"waiting burnt {cpu:.2f}s of CPU in {wall:.2f}s: a busy loop"
    finally:
        assert producer.wait(timeout=60) == 0
        q.close()


def test_get_many_claims_up_to_n_in_priority_order(queue: pq_core.Queue) -> None:
    ids = queue.put_many(["a", "b", "c"])
    urgent = queue.put("urgent", priority=1)
    got = queue.get_many(3)
    assert [i.id for i in got] == [urgent, ids[0], ids[1]]
    assert all(i.status is Status.IN_PROGRESS and i.attempts == 1 for i in got)
    assert len({i.token for i in got}) >= 1
    assert [i.id for i in queue.get_many(50)] == [ids[2]]
    assert queue.get_many(50) == []


# -- done ----------------------------------------------------------------------------------------


def test_done_moves_in_progress_to_done(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    queue.done(claim_one(queue))
    item = queue.item(job_id)
    assert item.status is Status.DONE
    assert item.lease_expires_at is None


def test_done_twice_is_harmless(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    item = claim_one(queue)
    queue.done(item)
    queue.done(item)
    assert queue.item(job_id).status is Status.DONE


def test_a_job_read_by_item_or_items_cannot_settle_the_claim_a_consumer_holds(
    queue: pq_core.Queue,
) -> None:
    job_id = queue.put("x")
    held = claim_one(queue)
    for read in (queue.item(job_id), queue.items()[0]):
        assert read.token is None
        for settle in (queue.done, queue.fail, queue.heartbeat):
            with pytest.raises(ValueError, match="get"):
                settle(read)
    assert queue.item(job_id).status is Status.IN_PROGRESS
    queue.done(held)
    assert queue.item(job_id).status is Status.DONE


def test_done_many_marks_every_claim_done_in_one_call(queue: pq_core.Queue) -> None:
    ids = queue.put_many(range(5))
    queue.done_many(queue.get_many(5))
    assert {queue.item(i).status for i in ids} == {Status.DONE}
    queue.done_many([])


def test_done_many_settles_the_others_and_reports_a_lost_claim(
    open_queue: OpenQueue, clock: FakeClock
) -> None:
    q = open_queue()
    ids = q.put_many(["a", "b"])
    mine = q.get_many(2, lease=10)
    clock.advance(11)
    pq_core.Manager(q).sweep()
    other = claim_one(q)  # another consumer now holds the first job
    with pytest.raises(pq_core.LeaseLost, match=str(other.id)):
        q.done_many(mine)
    assert q.item(other.id).status is Status.IN_PROGRESS
    assert {q.item(i).status for i in ids if i != other.id} == {Status.DONE}
    q.done(other)  # the claim that holds it is untouched
    assert q.item(other.id).status is Status.DONE


def test_a_late_done_after_the_lease_ran_out_marks_a_waiting_job_done(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    item = claim_one(queue, lease=10)
    clock.advance(11)
    assert pq_core.Manager(queue).sweep().requeued == 1
    assert queue.item(job_id).status is Status.READY
    queue.done(item)
    assert queue.item(job_id).status is Status.DONE
    assert queue.get() is None


def test_a_late_done_after_requeue_marks_it_done(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    item = claim_one(queue)
    assert queue.requeue([job_id]) == 1
    queue.done(item)
    assert queue.item(job_id).status is Status.DONE


def test_a_late_done_when_another_consumer_holds_the_job_raises_lease_lost_and_changes_nothing(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    first = claim_one(queue, lease=10)
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    second = claim_one(queue)
    before = queue.item(job_id)
    with pytest.raises(pq_core.LeaseLost, match=f"job\\(s\\) {job_id}"):
        queue.done(first)
    after = queue.item(job_id)
    assert after == before
    assert after.status is Status.IN_PROGRESS and after.lease_expires_at == second.lease_expires_at
    with pytest.raises(pq_core.LeaseLost):
        queue.fail(first, "late")
    with pytest.raises(pq_core.LeaseLost):
        queue.heartbeat(first)
    assert queue.item(job_id) == before
    queue.done(second)
    assert queue.item(job_id).status is Status.DONE


def test_done_of_a_deleted_job_raises_item_not_found(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    item = claim_one(queue)
    queue.delete([job_id])
    with pytest.raises(pq_core.ItemNotFound, match=str(job_id)):
        queue.done(item)


# -- fail ----------------------------------------------------------------------------------------


def test_fail_puts_the_job_back_after_a_growing_back_off(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=5)
    assert queue.fail(claim_one(queue), error="first") is Status.READY
    item = queue.item(job_id)
    assert item.status is Status.READY and item.last_error == "first" and item.attempts == 1
    waited = []
    for attempt in (2, 3):
        start = clock()
        while (claimed := queue.get()) is None:
            clock.advance(0.5)
        waited.append(clock() - start)
        assert claimed.attempts == attempt
        queue.fail(claimed, error=f"attempt {attempt}")
    assert waited[0] >= 1 and waited[1] > waited[0], f"back-off did not grow: {waited}"


def test_fail_at_max_attempts_moves_the_job_to_dead(queue: pq_core.Queue, clock: FakeClock) -> None:
    job_id = queue.put("x", max_attempts=2)
    assert queue.fail(claim_one(queue), "one") is Status.READY
    clock.advance(3600)
    assert queue.fail(claim_one(queue), "two") is Status.DEAD
    item = queue.item(job_id)
    assert item.status is Status.DEAD and item.attempts == 2 and item.last_error == "two"
    clock.advance(3600)
    assert queue.get() is None


def test_fail_with_retry_in_sets_when_the_job_comes_back(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    queue.put("x")
    queue.fail(claim_one(queue), "later", retry_in=60)
    clock.advance(59)
    assert queue.get() is None
    clock.advance(1)
    assert queue.get() is not None


def test_a_failure_is_kept_in_the_job_history(queue: pq_core.Queue) -> None:
    job_id = queue.put("x", max_attempts=1)
    queue.fail(claim_one(queue), "ValueError: bad input")
    history = queue.item(job_id).history
    assert any("bad input" in e.detail for e in history)


# -- heartbeat -----------------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_so_the_manager_leaves_the_job_alone(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    item = claim_one(queue, lease=10)
    manager = pq_core.Manager(queue)
    for _ in range(5):
        clock.advance(8)
        item = queue.heartbeat(item)
        assert item.lease_expires_at.timestamp() == clock() + 10
        assert manager.sweep().requeued == 0
    assert queue.item(job_id).status is Status.IN_PROGRESS
    queue.done(item)
    assert queue.item(job_id).status is Status.DONE


def test_heartbeat_after_the_job_was_taken_back_raises_lease_lost(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    queue.put("x")
    item = claim_one(queue, lease=10)
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    with pytest.raises(pq_core.LeaseLost):
        queue.heartbeat(item)


# -- claim() -------------------------------------------------------------------------------------


def test_claim_marks_the_job_done_when_the_block_ends(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    with queue.claim() as item:
        assert item.id == job_id
        assert queue.item(job_id).status is Status.IN_PROGRESS
    assert queue.item(job_id).status is Status.DONE


def test_claim_fails_the_job_and_reraises_when_the_block_raises(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    with pytest.raises(ZeroDivisionError), queue.claim():
        1 / 0  # noqa: B018
    item = queue.item(job_id)
    assert item.status is Status.READY
    assert "ZeroDivisionError" in item.last_error


def test_claim_yields_none_when_nothing_is_ready(queue: pq_core.Queue) -> None:
    with queue.claim() as item:
        assert item is None


def test_claim_leaves_a_job_the_block_settled_itself(queue: pq_core.Queue) -> None:
    job_id = queue.put("x", max_attempts=1)
    with queue.claim() as item:
        queue.fail(item, "given up")
    assert queue.item(job_id).status is Status.DEAD


# -- consume() -----------------------------------------------------------------------------------


def test_consume_yields_every_job_and_marks_each_done(queue: pq_core.Queue) -> None:
    ids = queue.put_many(range(10))
    seen = []
    for item in queue.consume(timeout=0):
        assert item.status is Status.IN_PROGRESS
        if seen:  # the previous job is acked when the next one is claimed
            assert queue.item(seen[-1]).status is Status.DONE
        seen.append(item.id)
    assert seen == ids
    assert {queue.item(i).status for i in ids} == {Status.DONE}


def test_consume_acks_the_previous_job_and_claims_the_next_in_one_commit(db: str) -> None:
    """A busy consumer pays one write transaction per job."""
    store = TracedStore(db)
    statements = store.statements
    q = pq_core.Queue(store)
    q.put_many(range(20))
    q.get_many(1)  # registers this consumer; not what is measured
    statements.clear()
    n = sum(1 for _ in q.consume(timeout=0))
    assert n == 19
    begins = [s for s in statements if s.strip().upper().startswith("BEGIN IMMEDIATE")]
    assert len(begins) <= n + 1, f"{len(begins)} write transactions for {n} jobs"
    q.close()


def test_stop_makes_consume_return_after_the_job_in_hand(queue: pq_core.Queue) -> None:
    ids = queue.put_many(range(5))
    seen = []
    for item in queue.consume():
        seen.append(item.id)
        if len(seen) == 2:
            queue.stop()
    assert seen == ids[:2]
    assert [queue.item(i).status for i in ids[:2]] == [Status.DONE] * 2
    assert {queue.item(i).status for i in ids[2:]} == {Status.READY}


def test_stop_from_another_thread_ends_an_idle_consume(queue: pq_core.Queue) -> None:
    threading.Timer(0.3, queue.stop).start()
    started = time.monotonic()
    assert list(queue.consume()) == []
    assert time.monotonic() - started < 30


def test_a_stop_that_comes_before_consume_starts_is_not_lost(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    queue.stop()  # e.g. a SIGTERM handler that ran before the loop began
    assert list(queue.consume(timeout=5)) == []
    assert queue.item(job_id).status is Status.READY
    assert [i.id for i in queue.consume(timeout=0)] == [job_id]  # that stop is used up


def test_consume_leaves_a_job_the_body_settled_itself(queue: pq_core.Queue) -> None:
    ok, bad = queue.put_many(["ok", "bad"], max_attempts=1)
    for item in queue.consume(timeout=0):
        if item.payload == "bad":
            queue.fail(item, "bad payload")
        else:
            queue.done(item)
    assert queue.item(ok).status is Status.DONE
    assert queue.item(bad).status is Status.DEAD


def test_a_job_whose_consume_loop_broke_out_goes_back_to_ready(queue: pq_core.Queue) -> None:
    first, second = queue.put_many(["a", "b"])
    for item in queue.consume(timeout=0):
        if item.id == second:
            break
    assert queue.item(first).status is Status.DONE
    assert queue.item(second).status is Status.READY


def test_a_long_lived_consumer_does_not_grow_with_every_job(db: str) -> None:
    q = pq_core.open(db, durability="normal")
    q.put_many(range(6000))

    def work(batches: int) -> None:
        for _ in range(batches):
            for item in q.get_many(100):
                q.done(item)
            q.done_many(q.get_many(100))
            with q.claim() as item:
                pass

    work(2)  # warm up caches
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    work(25)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 200_000, f"a consumer grew {grown} bytes over 5,000 jobs"
    assert q.stats()[q.name].counts[Status.DONE] == 27 * 201
    q.close()


def test_a_queue_opened_before_fork_claims_with_its_own_connection_in_the_child(db: str) -> None:
    q = pq_core.open(db)
    ids = q.put_many(["parent", "child"])
    assert claim_one(q).id == ids[0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            item = q.get()
            q.done(item)
            os._exit(0 if item.id == ids[1] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert q.item(ids[1]).status is Status.DONE
    assert q.put("parent still works") > ids[1]
    q.close()
