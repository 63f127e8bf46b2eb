"""The design notes' names (SPEC 2 and 3): thin aliases that act like the calls they stand for."""

from __future__ import annotations

from datetime import datetime

import pytest

import pq_core
from pq_core import Status

from .conftest import FakeClock

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue

# -- statuses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("ready", Status.READY),
        ("READY", Status.READY),
        ("unprocessed", Status.READY),
        ("Unprocessed", Status.READY),
        ("in_progress", Status.IN_PROGRESS),
        ("In_Progress", Status.IN_PROGRESS),
        ("under_process", Status.IN_PROGRESS),
        ("UNDER_PROCESS", Status.IN_PROGRESS),
        ("done", Status.DONE),
        ("DONE", Status.DONE),
        ("processed", Status.DONE),
        ("Processed", Status.DONE),
        ("dead", Status.DEAD),
        ("Dead", Status.DEAD),
    ],
)
def test_status_names_and_the_old_names_are_accepted_case_insensitively(
    name: str, status: Status
) -> None:
    assert Status.parse(name) is status


@pytest.mark.parametrize("name", ["finished", "", "rdy", "DONE!", None, 3])
def test_an_unknown_status_is_a_value_error_listing_the_valid_ones(name: object) -> None:
    with pytest.raises(ValueError) as caught:
        Status.parse(name)  # type: ignore[arg-type]
    message = str(caught.value)
    assert repr(name) in message
    for valid in ("ready", "in_progress", "done", "dead"):
        assert valid in message


def test_an_unknown_status_is_refused_everywhere_a_status_is_an_input(
    queue: pq_core.Queue,
) -> None:
    job_id = queue.put("x")
    for call in (
        lambda: queue.items(status="finished"),
        lambda: queue.purge(0, status="finished"),
        lambda: queue.update_item_status(job_id, "finished"),
        lambda: queue.update_job_status(job_id, status="finished"),
        lambda: queue.count("finished"),
    ):
        with pytest.raises(ValueError, match="'finished'.*ready"):
            call()
    assert queue.item(job_id).status is Status.READY


# -- opening -------------------------------------------------------------------------------------


def test_persistent_q_opens_a_store_from_the_notes_config_dict(db: str) -> None:
    q = pq_core.persistentQ({"name": db, "type": "sqlite"})
    job_id = q.put_item("from the notes")
    assert q.get_item(job_id).payload == "from the notes"
    q.close()
    named = pq_core.persistentQ({"name": db, "type": "SQLite", "queue": "emails", "lease": 60})
    assert named.name == "emails"
    assert named.stats()["default"].counts[Status.READY] == 1
    named.close()


def test_persistent_q_refuses_a_config_without_a_name_or_of_an_unknown_type(db: str) -> None:
    with pytest.raises(ValueError, match="name"):
        pq_core.persistentQ({"type": "sqlite"})
    with pytest.raises(ValueError, match="'redis'"):
        pq_core.persistentQ({"name": db, "type": "redis"})


def test_sqlite_persistent_queue_is_a_queue(db: str) -> None:
    q = pq_core.SQLitePersistentQueue(db)
    assert isinstance(q, pq_core.Queue)
    assert q.get_item() is None
    q.close()


# -- producer and consumer -----------------------------------------------------------------------


def test_put_item_is_put(queue: pq_core.Queue) -> None:
    job_id = queue.put_item({"n": 1}, priority=3)
    item = queue.item(job_id)
    assert (item.payload, item.priority, item.status) == ({"n": 1}, 3, Status.READY)


def test_get_item_without_an_id_claims_the_next_job(queue: pq_core.Queue) -> None:
    job_id = queue.put_item("x")
    item = queue.get_item()
    assert item.id == job_id and item.status is Status.IN_PROGRESS
    assert queue.get_item() is None
    queue.done(item)
    assert queue.get_item(job_id).status is Status.DONE


def test_update_job_status_marks_done_by_default(queue: pq_core.Queue) -> None:
    job_id = queue.put_item("x")
    queue.get_item()
    queue.update_job_status(job_id)
    assert queue.item(job_id).status is Status.DONE
    queue.update_job_status(job_id, status="unprocessed")
    assert queue.item(job_id).status is Status.READY
    queue.update_job_status(job_id, status="DONE")
    assert queue.item(job_id).status is Status.DONE


def test_update_item_status_forces_a_status_and_records_it(queue: pq_core.Queue) -> None:
    job_id = queue.put_item("x")
    queue.done(queue.get_item())
    queue.update_item_status(job_id, "unprocessed")
    item = queue.item(job_id)
    assert item.status is Status.READY
    assert queue.get_item().id == job_id
    assert [e.kind for e in item.history] == ["set ready"]


def test_update_item_status_of_an_unknown_id_raises_item_not_found(queue: pq_core.Queue) -> None:
    with pytest.raises(pq_core.ItemNotFound, match="4242"):
        queue.update_item_status(4242, "done")


def test_a_job_forced_to_in_progress_is_held_by_no_one_so_the_next_sweep_puts_it_back(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put_item("x")
    queue.update_item_status(job_id, "under_process")
    assert queue.item(job_id).status is Status.IN_PROGRESS
    [state] = queue.get_item_state()
    assert state["id"] == job_id and state["claimed_at"] is not None
    clock.advance(1)
    assert pq_core.Manager(queue).sweep().requeued == 1
    assert queue.item(job_id).status is Status.READY


def test_forcing_a_job_back_to_ready_when_its_dedup_key_went_to_a_newer_job_keeps_that_one_live(
    queue: pq_core.Queue,
) -> None:
    old = queue.put("old", dedup_key="k")
    queue.done(queue.get())
    new = queue.put("new", dedup_key="k")
    queue.update_item_status(old, "unprocessed")
    assert queue.item(old).status is Status.READY
    assert queue.put("again", dedup_key="k") == new  # the newer job keeps the key


def test_get_item_state_lists_the_jobs_in_progress_with_claim_time_and_attempts(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    a, b, c = queue.put_many(["a", "b", "c"])
    queue.get_item()
    clock.advance(5)
    queue.get_item()
    state = sorted(queue.get_item_state(), key=lambda s: s["id"])
    assert [s["id"] for s in state] == [a, b]
    assert [s["attempts"] for s in state] == [1, 1]
    assert isinstance(state[0]["claimed_at"], datetime)
    assert (state[1]["claimed_at"] - state[0]["claimed_at"]).total_seconds() == 5


def test_remove_item_deletes_one_job(queue: pq_core.Queue) -> None:
    job_id = queue.put_item("x")
    assert queue.remove_item(job_id) is True
    assert queue.remove_item(job_id) is False
    with pytest.raises(pq_core.ItemNotFound):
        queue.get_item(job_id)


def test_get_all_items_lists_every_job_as_a_dict_oldest_first(queue: pq_core.Queue) -> None:
    ids = queue.put_many([{"n": n} for n in range(1200)])
    queue.get_item()
    rows = queue.get_all_items()
    assert [r["id"] for r in rows] == ids
    assert rows[0]["status"] == "in_progress" and rows[1]["status"] == "ready"
    assert rows[5]["payload"] == {"n": 5}
    assert "token" not in rows[0]


def test_purge_with_a_duration_and_the_old_status_name(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    queue.put_item("x")
    queue.update_job_status(queue.get_item().id, status="DONE")
    assert queue.purge(3600, status="processed") == 0
    clock.advance(3601)
    assert queue.purge(3600, status="processed") == 1
    assert queue.get_all_items() == []


def test_the_notes_producer_consumer_and_manager_loop_runs_as_written(
    db: str, clock: FakeClock
) -> None:
    q = pq_core.persistentQ({"name": db, "type": "sqlite", "clock": clock})
    for n in range(5):
        q.put_item(f"job {n}")
    processed = []
    while (item := q.get_item()) is not None:
        if item.payload == "job 3" and item.attempts == 1:
            continue  # this consumer "crashes": the job stays under process
        processed.append(item.payload)
        q.update_job_status(item.id, status="DONE")
    # the notes' hand-written manager: jobs under process too long go back
    clock.advance(600)
    for state in q.get_item_state():
        if (clock() - state["claimed_at"].timestamp()) > 300:
            q.update_item_status(state["id"], "unprocessed")
    while (item := q.get_item()) is not None:
        processed.append(item.payload)
        q.update_job_status(item.id, status="DONE")
    assert sorted(processed) == [f"job {n}" for n in range(5)]
    assert q.stats().counts[Status.DONE] == 5
    q.close()
