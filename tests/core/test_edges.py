"""Late acks exactly (issue 7 point 4) and input checked before anything is written (point 6),
on every backend."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

import pq_core
from pq_core import Status
from pq_core.model import MAX_DEPTH, MAX_PRIORITY, MAX_QUEUE_NAME, MIN_PRIORITY

from .conftest import FakeClock, OpenQueue

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue

# -- late acks -------------------------------------------------------------------------------


def two_claims_old(queue: pq_core.Queue, clock: FakeClock) -> tuple[int, pq_core.Item]:
    """A job claimed, taken back, claimed again and finished, then requeued by an operator:
    the first claim's Item is two claims old."""
    job_id = queue.put("x")
    first = queue.get(lease=10)
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    queue.done(queue.get())
    queue.requeue([job_id])
    return job_id, first


def test_a_stale_done_two_claims_old_is_lease_lost_and_keeps_the_operators_requeue(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id, first = two_claims_old(queue, clock)
    for settle in (queue.done, lambda i: queue.fail(i, "late"), queue.heartbeat, queue.release):
        with pytest.raises(pq_core.LeaseLost):
            settle(first)
        assert queue.item(job_id).status is Status.READY
    assert queue.get().id == job_id  # it runs again, as the operator asked


def test_a_made_up_token_is_lease_lost_whatever_the_status(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=1)
    item = queue.get(lease=10)
    forged = dataclasses.replace(item, token="0123456789abcdef")
    with pytest.raises(pq_core.LeaseLost):
        queue.done(forged)  # held by another claim
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    assert queue.item(job_id).status is Status.DEAD
    for settle in (queue.done, lambda i: queue.fail(i, "x"), queue.heartbeat):
        with pytest.raises(pq_core.LeaseLost):
            settle(forged)
    assert queue.item(job_id).status is Status.DEAD
    never = queue.put("never claimed")
    unclaimed = dataclasses.replace(forged, id=never)
    with pytest.raises(pq_core.LeaseLost):
        queue.done(unclaimed)
    assert queue.item(never).status is Status.READY


def test_a_late_done_of_a_job_taken_back_and_not_claimed_since_marks_it_done(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    ready, dead = queue.put("ready again"), queue.put("dead", max_attempts=1)
    first, second = queue.get_many(2, lease=10)
    clock.advance(11)
    report = pq_core.Manager(queue).sweep()
    assert (report.requeued, report.dead) == (1, 1)
    queue.done(first)
    queue.done(second)
    assert [queue.item(i).status for i in (ready, dead)] == [Status.DONE, Status.DONE]
    queue.done(first)  # twice is harmless


def test_a_late_fail_of_a_job_not_claimed_since_changes_nothing_and_says_where_it_is(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    item = queue.get(lease=10)
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    assert queue.fail(item, "too late") is Status.READY
    assert queue.item(job_id).attempts == 1
    with pytest.raises(pq_core.LeaseLost):
        queue.heartbeat(item)  # not held any more: nothing to extend


def test_done_many_settles_its_own_claims_and_reports_the_stale_ones(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id, stale = two_claims_old(queue, clock)
    fresh = queue.put("fresh")
    [current, other] = queue.get_many(2)
    assert {current.id, other.id} == {job_id, fresh}
    with pytest.raises(pq_core.LeaseLost, match=str(job_id)):
        queue.done_many([stale, other])
    assert queue.item(other.id).status is Status.DONE
    assert queue.item(job_id).status is Status.IN_PROGRESS


# -- input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda q: q.put("x", delay="99999999999w"), "delay"),
        (lambda q: q.put("x", delay=1e300), "delay"),
        (lambda q: q.put("x", delay=timedelta(days=999_999)), "delay"),
        (lambda q: q.put("x", delay=""), "delay"),
        (lambda q: q.put("x", delay=[]), "delay"),
        (lambda q: q.put("x", delay=float("inf")), "delay"),
        (lambda q: q.get(lease=1e300), "lease"),
        (lambda q: q.get(lease=0), "lease"),
        (lambda q: q.get(lease=""), "lease"),
        (lambda q: q.get_many(1, lease="0s"), "lease"),
        (lambda q: q.get(timeout="soon"), "timeout"),
        (lambda q: q.purge(older_than="1000000000d"), "older_than"),
        (lambda q: q.item("²"), "job id"),
        (lambda q: q.item(0), "job id"),
        (lambda q: q.item(-3), "job id"),
        (lambda q: q.item("12a"), "job id"),
        (lambda q: q.requeue([1, "x"]), "job id"),
        (lambda q: q.delete(True), "job id"),
        (lambda q: q.put("x", priority=MAX_PRIORITY + 1), "priority"),
        (lambda q: q.put("x", priority=MIN_PRIORITY - 1), "priority"),
        (lambda q: q.put("x", max_attempts=2**31), "max_attempts"),
        (lambda q: q.put("x", max_attempts=0), "max_attempts"),
        (lambda q: q.put("x", dedup_key=""), "dedup_key"),
        (lambda q: q.put("x", dedup_key=5), "dedup_key"),
        (lambda q: q.items(limit=0), "limit"),
        (lambda q: q.items(offset=-1), "offset"),
        (lambda q: q.events(limit=2**40), "limit"),
    ],
)
def test_nonsense_input_is_an_invalid_value_naming_it_and_nothing_is_written(
    queue: pq_core.Queue,
    call,
    named: str,  # type: ignore[no-untyped-def]
) -> None:
    job_id = queue.put("already here")
    before = queue.stats()
    with pytest.raises(pq_core.InvalidValue, match=named):
        call(queue)
    assert queue.stats().queues == before.queues
    item = queue.item(job_id)
    assert (item.status, item.attempts) == (Status.READY, 0)


def test_the_extremes_that_are_allowed_work_on_every_backend(queue: pq_core.Queue) -> None:
    low = queue.put("low", priority=MIN_PRIORITY)
    high = queue.put("high", priority=MAX_PRIORITY, max_attempts=2**31 - 1)
    far = queue.put("far", delay="36500d")  # a hundred years
    assert queue.item(far).available_at.year > 2100
    assert [i.id for i in queue.get_many(3)] == [high, low]
    assert queue.count(scheduled=True) == 1
    assert queue.items(status="ready")[0].id == far  # every listing still reads it


def nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def test_payload_nesting_has_a_documented_limit_checked_before_writing(
    queue: pq_core.Queue,
) -> None:
    ok = queue.put(nested(MAX_DEPTH))
    assert queue.get().payload == nested(MAX_DEPTH)  # every consumer can read it back
    for depth in (MAX_DEPTH + 1, 985, 5000, 100_000):
        with pytest.raises(pq_core.PayloadError, match=f"{MAX_DEPTH}"):
            queue.put(nested(depth))
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(pq_core.PayloadError):
        queue.put(loop)
    assert queue.stats()[queue.name].total == 1 and queue.item(ok).attempts == 1


@pytest.mark.parametrize(
    "payload", ["lone \ud800 surrogate", {"key": "\udfff"}, ["\ud83d"], {"\ud800": 1}]
)
def test_a_lone_surrogate_is_a_payload_error_not_a_raw_unicode_error(
    queue: pq_core.Queue, payload: object
) -> None:
    with pytest.raises(pq_core.PayloadError, match="surrogate"):
        queue.put(payload)
    with pytest.raises(pq_core.PayloadError):
        queue.put_many(["fine", payload])
    assert queue.stats()[queue.name].total == 0


def test_hostile_bytes_in_every_text_field_are_stored_and_read_back(
    open_queue: OpenQueue,
) -> None:
    hostile = "a\x00b\x1b[31m\x07\u202e\U0001f600 'quoted' \"too\" %s %(x)s ;-- \\"
    q = open_queue("hostile queue ✓")
    job_id = q.put(hostile, dedup_key=hostile.replace("\x00", ""), max_attempts=1)
    raw = q.put(hostile.encode("utf-8") + b"\xff\xfe\x00")
    assert q.item(job_id).payload == hostile
    assert q.items(search="hostile") == [] and [i.id for i in q.items(search="'quoted'")] == [
        raw,
        job_id,
    ]
    item = q.get()
    q.fail(item, error=hostile)
    assert q.item(job_id).last_error == hostile.replace("\x00", "\\x00")
    assert [g.count for g in q.errors()] == [1]
    assert q.requeue([job_id], actor=hostile) == 1
    assert q.events(queue=q.name)[0].actor == hostile.replace("\x00", "\\x00")


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * (MAX_QUEUE_NAME + 1), "tab\there", "esc\x1b[2J", "nul\x00", "\ud800"]
)
def test_a_queue_name_has_a_length_limit_and_no_control_characters(backend: str, name: str) -> None:
    with pytest.raises(pq_core.InvalidValue, match="queue name"):
        pq_core.open(backend, queue=name)
    assert pq_core.open(backend, queue="x" * MAX_QUEUE_NAME).put("fits") == 1


# -- no store by accident ----------------------------------------------------------------------


def test_create_false_refuses_a_missing_store_and_creates_nothing(backend: str) -> None:
    if backend.startswith("postgresql://"):
        missing = backend + "_missing"
    else:
        missing = backend.replace("jobs.sqlite", "typo.sqlite")
    with pytest.raises(pq_core.StoreNotFound, match="no such store"):
        pq_core.open(missing, create=False)
    with pytest.raises(pq_core.StoreNotFound):
        pq_core.open(missing, create=False)  # still not there
    pq_core.open(backend).close()
    q = pq_core.open(backend, create=False)  # an existing store opens as usual
    assert q.put("x") == 1
    q.close()
