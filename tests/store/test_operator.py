"""The operator's calls: requeue, delete, run_now, purge, set_status, pause, matching_ids."""

from __future__ import annotations

import json

import pytest

from pq_core.errors import ItemNotFound
from pq_core.store.base import JobFilter, Store

from .conftest import EVERY_MINUTE, START, Backend, claim, job


def counts(store: Store) -> dict[tuple[str, str], int]:
    return {k: n for k, n in store.stats(EVERY_MINUTE).counts.items() if n}


def everything(store: Store) -> tuple:
    """All a refused call could have touched."""
    stats = store.stats(EVERY_MINUTE)
    return (
        store.rows(JobFilter(), 1000, 0, False, None),
        {k: n for k, n in stats.counts.items() if n},
        stats.per_minute,
        store.events(None, 1000, 0),
    )


def finish(store: Store, queue: str = "q", status: str = "done") -> int:
    """Claim the next job of `queue` and settle it as done or dead; its id."""
    [row] = claim(store, queue)
    if status == "done":
        store.complete([(row.id, row.token)])  # type: ignore[list-item]
    else:
        store.fail(row.id, row.token, status, 60, "boom 1", "boom #", "c")  # type: ignore[arg-type]
    return row.id


# -- requeue -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [True, False])
def test_requeue_puts_finished_and_held_jobs_back_to_ready_now(
    store: Store, clock, reset: bool
) -> None:
    store.insert([job("done"), job("dead"), job("held"), job("ready")])
    done = finish(store)
    dead = finish(store, status="dead")
    [held] = claim(store)
    clock.advance(5)
    ids = [done, dead, held.id, held.id + 1, 999]
    assert store.requeue(ids, reset, "operator o", None) == [done, dead, held.id]
    for job_id in (done, dead, held.id):
        row = store.row(job_id)
        assert row is not None
        assert (row.status, row.available_at, row.updated_at, row.lease_expires_at) == (
            "ready", START + 5, START + 5, None,
        )  # fmt: skip
        assert row.attempts == (0 if reset else 1)
    assert counts(store) == {("q", "ready"): 4}
    assert store.errors(None, 10) == []  # a requeued job is no longer failing
    [event] = store.events(None, 10, 0)
    assert (event.kind, event.actor, event.count) == ("requeue", "operator o", 3)
    assert json.loads(event.job_ids) == [done, dead, held.id]
    assert [e.kind for e in store.history(dead)] == ["dead", "requeue"]
    assert len(claim(store, limit=10)) == 4


def test_requeue_records_one_event_per_queue(store: Store) -> None:
    store.insert([job("a")])
    store.insert([job("b", "other")])
    a, b = finish(store), finish(store, "other")
    assert store.requeue([a, b], True, "op", None) == [a, b]
    events = sorted((e.queue, json.loads(e.job_ids)) for e in store.events(None, 10, 0))
    assert events == [("other", [b]), ("q", [a])]


def test_a_requeued_job_gives_up_its_dedup_key_to_a_newer_live_job(store: Store) -> None:
    [old] = store.insert([job("old", dedup_key="k")])
    finish(store)
    [new] = store.insert([job("new", dedup_key="k")])
    assert store.requeue([old], True, "op", None) == [old]
    assert store.row(old).dedup_key is None  # type: ignore[union-attr]
    assert store.row(new).dedup_key == "k"  # type: ignore[union-attr]
    assert store.insert([job("again", dedup_key="k")]) == [new]


def test_a_requeued_job_keeps_its_dedup_key_when_no_live_job_holds_it(store: Store) -> None:
    [old] = store.insert([job("old", dedup_key="k")])
    finish(store)
    store.requeue([old], True, "op", None)
    assert store.row(old).dedup_key == "k"  # type: ignore[union-attr]
    assert store.insert([job("again", dedup_key="k")]) == [old]


def test_of_several_requeued_jobs_with_one_key_the_newest_keeps_it(store: Store) -> None:
    ids = []
    for _ in range(3):
        ids += store.insert([job("x", dedup_key="k")])
        finish(store)
    assert store.requeue(ids, True, "op", None) == ids
    assert [store.row(i).dedup_key for i in ids] == [None, None, "k"]  # type: ignore[union-attr]
    assert counts(store) == {("q", "ready"): 3}


def test_requeue_with_only_queue_refuses_an_id_of_another_queue_and_changes_nothing(
    store: Store,
) -> None:
    store.insert([job("mine")])
    store.insert([job("theirs", "other")])
    mine, theirs = finish(store), finish(store, "other")
    before = everything(store)
    with pytest.raises(ItemNotFound, match=f"{theirs} \\(queue 'other'\\) not in queue 'q'"):
        store.requeue([mine, theirs], True, "op", "q")
    assert everything(store) == before
    assert store.requeue([mine], True, "op", "q") == [mine]


# -- delete ------------------------------------------------------------------------------------


def test_delete_removes_jobs_with_their_history_and_links(backend: Backend, store: Store) -> None:
    store.insert([job("a"), job("b"), job("c")])
    a = finish(store, status="dead")  # a failure in its history
    [b] = claim(store)
    assert store.requeue([a], True, "op", None) == [a]  # an event linked to it
    assert store.delete([a, b.id, 999], "operator o", None) == [a, b.id]
    assert store.row(a) is None and store.row(b.id) is None
    assert store.history(a) == []
    assert counts(store) == {("q", "ready"): 1}
    [deleted, _requeued] = store.events(None, 10, 0)
    assert (deleted.kind, deleted.actor, json.loads(deleted.job_ids)) == (
        "delete", "operator o", [a, b.id],
    )  # fmt: skip
    assert backend.sql("SELECT count(*) FROM pq_history") == [(0,)]
    assert backend.sql("SELECT count(*) FROM pq_event_jobs WHERE job_id IN (?, ?)", (a, b.id)) == [
        (0,)
    ]


def test_a_job_that_takes_a_deleted_jobs_id_starts_with_no_history(
    backend: Backend, store: Store
) -> None:
    store.insert([job("a")])
    a = finish(store, status="dead")
    store.requeue([a], True, "op", None)
    assert len(store.history(a)) == 2
    store.delete([a], "op", None)
    [new] = store.insert([job("new")])
    if not backend.postgres:
        assert new == a  # SQLite hands out the highest id again once it is gone
    assert store.history(new) == []


def test_delete_with_only_queue_refuses_an_id_of_another_queue_and_changes_nothing(
    store: Store,
) -> None:
    [mine] = store.insert([job("mine")])
    [theirs] = store.insert([job("theirs", "other")])
    before = everything(store)
    with pytest.raises(ItemNotFound):
        store.delete([mine, theirs], "op", "q")
    assert everything(store) == before


# -- run_now -----------------------------------------------------------------------------------


def test_run_now_makes_scheduled_jobs_available_at_once(store: Store, clock) -> None:
    [later, now] = store.insert([job("later", delay=600), job("now", delay=600)])
    [plain] = store.insert([job("plain")])
    clock.advance(10)
    assert [r.id for r in claim(store)] == [plain]
    assert store.run_now([later, plain, 999], "op", None) == [later]
    assert store.row(later).available_at == START + 10  # type: ignore[union-attr]
    assert store.row(now).available_at == START + 600  # type: ignore[union-attr]
    [event] = store.events(None, 10, 0)
    assert (event.kind, json.loads(event.job_ids)) == ("run_now", [later])
    assert [r.id for r in claim(store, limit=5)] == [later]


def test_run_now_with_only_queue_refuses_an_id_of_another_queue(store: Store) -> None:
    [mine] = store.insert([job("mine", delay=60)])
    [theirs] = store.insert([job("theirs", "other", delay=60)])
    before = everything(store)
    with pytest.raises(ItemNotFound):
        store.run_now([mine, theirs], "op", "q")
    assert everything(store) == before


# -- purge -------------------------------------------------------------------------------------


def test_purge_removes_jobs_of_a_status_last_changed_at_least_that_long_ago(
    store: Store, clock
) -> None:
    store.insert([job(str(i)) for i in range(4)])
    old = [finish(store), finish(store)]
    clock.advance(100)
    newer = finish(store)
    clock.advance(50)  # old: 150 s ago, newer: 50 s ago
    assert store.purge_count("q", "done", 151) == 0
    assert store.purge_count("q", "done", 150) == 2  # exactly that old counts
    assert store.purge("q", "done", 151, 100, "op") == 0
    assert store.purge("q", "done", 150, 100, "op") == 2
    assert [store.row(i) for i in old] == [None, None]
    assert store.row(newer).status == "done"  # type: ignore[union-attr]
    assert counts(store) == {("q", "done"): 1, ("q", "ready"): 1}
    [event] = store.events(None, 10, 0)
    assert (event.kind, event.actor, event.count, event.job_ids) == ("purge", "op", 2, "[]")
    assert store.purge("q", "done", 0, 100, "op") == 1
    assert len(store.events(None, 10, 0)) == 2  # no event when nothing was purged before


def test_purge_takes_one_status_only(store: Store, clock) -> None:
    store.insert([job(str(i)) for i in range(3)])
    finish(store)
    dead = finish(store, status="dead")
    clock.advance(10)
    assert store.purge_count("q", "dead", 5) == 1
    assert store.purge("q", "dead", 5, 100, "op") == 1
    assert store.row(dead) is None
    assert counts(store) == {("q", "done"): 1, ("q", "ready"): 1}
    assert store.purge_count("q", "ready", 5) == 1  # any status, live ones too
    assert store.purge("q", "ready", 5, 100, "op") == 1


def test_purge_of_every_queue_and_its_limit(store: Store, clock) -> None:
    for queue in ("a", "b", "c"):
        store.insert([job("x", queue), job("y", queue)])
        finish(store, queue)
        finish(store, queue)
    clock.advance(10)
    assert store.purge_count(None, "done", 5) == 6
    assert store.purge(None, "done", 5, 4, "op") == 4  # the limit spans the queues
    assert store.purge_count(None, "done", 5) == 2
    assert sorted(e.queue for e in store.events(None, 10, 0)) == ["a", "b"]  # one per queue
    assert store.purge(None, "done", 5, 100, "op") == 2
    assert counts(store) == {}


@pytest.mark.parametrize("old", [2, 8])
def test_purge_count_is_exact_whichever_side_of_the_age_is_bigger(
    store: Store, clock, old: int
) -> None:
    store.insert([job(str(i)) for i in range(10)])
    for _ in range(old):
        finish(store)
    clock.advance(100)
    for _ in range(10 - old):
        finish(store)
    assert store.purge_count("q", "done", 100) == old
    assert store.purge_count("q", "done", 50) == old
    assert store.purge_count("q", "done", 0) == 10
    assert store.purge_count("q", "done", 101) == 0


# -- set_status, pause, matching_ids -----------------------------------------------------------


def test_set_status_forces_one_jobs_status_and_records_it(store: Store, clock) -> None:
    [a] = store.insert([job("a")])
    assert store.set_status(a, "done", "op") is True
    assert store.set_status(999, "done", "op") is False
    clock.advance(5)
    assert store.set_status(a, "in_progress", "op") is True
    row = store.row(a)
    assert (row.status, row.lease_expires_at) == ("in_progress", START + 5)  # type: ignore[union-attr]
    assert store.expired() is True  # held by no claim: the next sweep puts it back
    assert store.set_status(a, "ready", "op") is True
    assert counts(store) == {("q", "ready"): 1}
    kinds = [(e.kind, e.actor, json.loads(e.job_ids)) for e in store.events(None, 10, 0)]
    assert kinds == [("set ready", "op", [a]), ("set in_progress", "op", [a]),
                     ("set done", "op", [a])]  # fmt: skip
    done_minute = int(START // 60)
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "done", done_minute): 1}


def test_set_status_of_a_held_job_to_in_progress_keeps_its_claim(store: Store) -> None:
    store.insert([job("a")])
    [row] = claim(store, lease=300)
    store.set_status(row.id, "in_progress", "op")
    assert store.row(row.id).lease_expires_at == START + 300  # type: ignore[union-attr]


def test_set_status_to_ready_gives_up_a_dedup_key_a_newer_live_job_holds(store: Store) -> None:
    [old] = store.insert([job("old", dedup_key="k")])
    finish(store)
    [new] = store.insert([job("new", dedup_key="k")])
    assert store.set_status(old, "ready", "op") is True
    assert (store.row(old).dedup_key, store.row(new).dedup_key) == (None, "k")  # type: ignore[union-attr]


def test_pause_and_resume_say_whether_they_changed_anything_and_are_recorded(
    store: Store,
) -> None:
    assert store.is_paused("q") is False
    assert store.set_paused("q", False, "op") is False
    assert store.set_paused("q", True, "op") is True
    assert store.set_paused("q", True, "op") is False
    assert store.is_paused("q") is True and store.is_paused("other") is False
    assert store.stats(EVERY_MINUTE).paused == frozenset({"q"})
    assert store.set_paused("q", False, "op") is True
    assert store.is_paused("q") is False
    assert [(e.kind, e.queue, e.actor) for e in store.events(None, 10, 0)] == [
        ("resume", "q", "op"), ("pause", "q", "op"),
    ]  # fmt: skip


def test_matching_ids_are_ascending_above_after_and_at_most_limit(store: Store) -> None:
    ids = store.insert([job(f"p{i}") for i in range(10)])
    store.insert([job("elsewhere", "other")])
    where = JobFilter(queue="q", statuses=("ready",))
    assert store.matching_ids(where, 0, 4) == ids[:4]
    assert store.matching_ids(where, ids[3], 4) == ids[4:8]
    assert store.matching_ids(where, ids[7], 4) == ids[8:]
    assert store.matching_ids(where, ids[-1], 4) == []
    assert store.matching_ids(JobFilter(search="p3"), 0, 100) == [ids[3]]
    assert store.matching_ids(JobFilter(statuses=("done",)), 0, 100) == []
