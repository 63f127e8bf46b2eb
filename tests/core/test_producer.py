"""Producer calls (SPEC 3): put, put_many, priority, delay, max_attempts, dedup_key, queues."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

import pq_core
from pq_core import Status

from .conftest import START, FakeClock, OpenQueue

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue


def test_put_returns_an_int_id_and_stores_a_ready_job(queue: pq_core.Queue) -> None:
    job_id = queue.put("payload")
    assert isinstance(job_id, int)
    item = queue.item(job_id)
    assert item.status is Status.READY
    assert item.payload == "payload"
    assert item.queue == queue.name
    assert item.attempts == 0
    assert item.lease_expires_at is None and item.worker is None and item.last_error is None


def test_payloads_come_back_as_the_type_that_was_put(queue: pq_core.Queue) -> None:
    payloads = ["text", "", b"\x00\xffbytes", {"to": "a@example.com", "n": [1, 2.5, None]}, 42]
    ids = [queue.put(p) for p in payloads]
    got = [queue.item(i).payload for i in ids]
    assert got == payloads
    assert isinstance(got[2], bytes)


def test_times_are_utc_and_come_from_the_clock(queue: pq_core.Queue) -> None:
    item = queue.item(queue.put("x"))
    assert item.created_at == datetime.fromtimestamp(START, UTC)
    assert item.created_at.tzinfo is not None and item.created_at.utcoffset() == timedelta(0)
    assert item.available_at == item.created_at == item.updated_at


def test_an_item_is_immutable(queue: pq_core.Queue) -> None:
    item = queue.item(queue.put("x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.status = Status.DONE  # type: ignore[misc]


def test_put_many_stores_every_job_in_order_and_returns_their_ids(queue: pq_core.Queue) -> None:
    ids = queue.put_many(["a", "b", {"c": 3}])
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    assert [queue.item(i).payload for i in ids] == ["a", "b", {"c": 3}]
    assert queue.put_many([]) == []


def test_put_many_takes_the_same_options_for_every_job(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    ids = queue.put_many(["a", "b"], priority=7, delay=10, max_attempts=9)
    for i in ids:
        item = queue.item(i)
        assert (item.priority, item.max_attempts) == (7, 9)
        assert item.available_at.timestamp() == clock() + 10


def test_put_many_stores_nothing_when_one_payload_is_bad(queue: pq_core.Queue) -> None:
    with pytest.raises(pq_core.PayloadError):
        queue.put_many(["fine", object(), "also fine"])
    assert queue.stats()[queue.name].total == 0


def test_a_higher_priority_job_is_claimed_first(queue: pq_core.Queue) -> None:
    low = queue.put("low")
    high = queue.put("high", priority=5)
    negative = queue.put("negative", priority=-1)
    also_low = queue.put("low too")
    assert [queue.get().id for _ in range(4)] == [high, low, also_low, negative]


def test_a_delayed_job_is_not_claimed_before_its_time(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("later", delay=30)
    assert queue.item(job_id).status is Status.READY
    assert queue.get() is None
    clock.advance(29.9)
    assert queue.get() is None
    clock.advance(0.1)
    assert queue.get().id == job_id


@pytest.mark.parametrize("delay", [timedelta(minutes=1), "1m", "60s", 60, 60.0])
def test_a_delay_may_be_seconds_a_timedelta_or_a_duration_text(
    queue: pq_core.Queue, clock: FakeClock, delay: object
) -> None:
    item = queue.item(queue.put("x", delay=delay))
    assert item.available_at.timestamp() == clock() + 60


def test_max_attempts_of_a_put_overrides_the_queue_default(open_queue: OpenQueue) -> None:
    q = open_queue(max_attempts=4)
    assert q.item(q.put("default")).max_attempts == 4
    assert q.item(q.put("own", max_attempts=1)).max_attempts == 1


def test_a_put_whose_dedup_key_is_live_returns_the_live_job_and_stores_nothing(
    queue: pq_core.Queue,
) -> None:
    first = queue.put("order 17", dedup_key="order-17")
    assert queue.put("order 17 again", dedup_key="order-17") == first
    assert queue.stats()[queue.name].total == 1
    item = queue.get()
    assert item.id == first
    # in progress is still live
    assert queue.put("order 17 once more", dedup_key="order-17") == first
    assert queue.item(first).payload == "order 17"
    assert queue.item(first).dedup_key == "order-17"


@pytest.mark.parametrize("finish", ["done", "dead"])
def test_a_dedup_key_is_free_again_once_its_job_is_done_or_dead(
    queue: pq_core.Queue, finish: str
) -> None:
    first = queue.put("x", dedup_key="k", max_attempts=1)
    item = queue.get()
    if finish == "done":
        queue.done(item)
    else:
        assert queue.fail(item, "boom") is Status.DEAD
    second = queue.put("x again", dedup_key="k")
    assert second != first
    assert queue.item(second).status is Status.READY


def test_dedup_keys_of_different_queues_do_not_meet(open_queue: OpenQueue) -> None:
    emails, sms = open_queue("emails"), open_queue("sms")
    assert emails.put("a", dedup_key="k") != sms.put("a", dedup_key="k")


def test_put_many_refuses_a_dedup_key(queue: pq_core.Queue) -> None:
    with pytest.raises(ValueError, match="dedup_key"):
        queue.put_many(["a", "b"], dedup_key="k")
    assert queue.stats()[queue.name].total == 0


def test_named_queues_share_one_store_and_keep_their_jobs_apart(open_queue: OpenQueue) -> None:
    default, emails = open_queue(), open_queue("emails")
    d = default.put("for default")
    e = emails.put("for emails")
    assert default.get().id == d
    assert default.get() is None
    assert emails.item(e).queue == emails.name
    assert emails.get().id == e
    stats = default.stats()
    assert stats[default.name].counts[Status.IN_PROGRESS] == 1
    assert stats[emails.name].counts[Status.IN_PROGRESS] == 1
    assert [i.id for i in default.items()] == [d]
    assert [i.id for i in emails.items()] == [e]


def test_the_default_queue_is_called_default(db: str) -> None:
    q = pq_core.open(db)
    assert q.name == "default"
    assert q.item(q.put("x")).queue == "default"
    q.close()
