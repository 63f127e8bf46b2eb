"""Workers (register, heartbeat, stop, the view of them) and housekeeping (maintain, now)."""

from __future__ import annotations

import time

from pq_core.store.base import Store, WorkerRow

from .conftest import EVERY_MINUTE, START, Backend, claim, job

W = "host:7:7:boot:ns"


def registrations(store: Store) -> list[WorkerRow]:
    return sorted(store.workers().workers)


# -- workers -----------------------------------------------------------------------------------


def test_register_adds_a_registration_and_refreshes_it_later(store: Store, clock) -> None:
    store.register(W, "consumer", "q", "host", 7)
    assert registrations(store) == [
        WorkerRow(W, "consumer", "q", "host", 7, START, START, False, 0)
    ]
    clock.advance(5)
    store.stop_worker(W, "consumer", "q", False)
    clock.advance(5)
    store.register(W, "consumer", "q", "host", 7)
    assert registrations(store) == [
        WorkerRow(W, "consumer", "q", "host", 7, START, START + 10, False, 0)
    ]


def test_one_worker_has_a_registration_per_kind_and_queue(store: Store) -> None:
    store.register(W, "consumer", "a", "host", 7)
    store.register(W, "consumer", "b", "host", 7)
    store.register(W, "manager", "a", "host", 7)
    assert [(w.kind, w.queue) for w in registrations(store)] == [
        ("consumer", "a"), ("consumer", "b"), ("manager", "a"),
    ]  # fmt: skip


def test_heartbeat_notes_the_time_and_the_jobs_done_lately_of_one_registration(
    store: Store, clock
) -> None:
    store.register(W, "consumer", "a", "host", 7)
    store.register(W, "consumer", "b", "host", 7)
    clock.advance(3)
    store.heartbeat_worker(W, "consumer", "a", 42)
    store.heartbeat_worker("someone else", "consumer", "a", 1)  # unknown: nothing happens
    [a, b] = registrations(store)
    assert (a.last_seen, a.done_recent) == (START + 3, 42)
    assert (b.last_seen, b.done_recent) == (START, 0)


def test_stop_worker_marks_one_queue_or_every_registration_stopped(store: Store, clock) -> None:
    for queue in ("a", "b", "c"):
        store.register(W, "consumer", queue, "host", 7)
    store.register(W, "manager", "a", "host", 7)
    clock.advance(2)
    store.stop_worker(W, "consumer", "a", False)
    assert [(w.queue, w.kind, w.stopped, w.last_seen) for w in registrations(store)] == [
        ("a", "consumer", True, START + 2), ("b", "consumer", False, START),
        ("c", "consumer", False, START), ("a", "manager", False, START),
    ]  # fmt: skip
    store.stop_worker(W, "consumer", None, False)
    assert [w.stopped for w in registrations(store)] == [True, True, True, False]


def test_stop_worker_with_forget_removes_the_registrations(store: Store) -> None:
    for queue in ("a", "b", "c"):
        store.register(W, "consumer", queue, "host", 7)
    store.register(W, "manager", "a", "host", 7)
    store.stop_worker(W, "consumer", "b", True)
    assert [(w.kind, w.queue) for w in registrations(store)] == [
        ("consumer", "a"), ("consumer", "c"), ("manager", "a"),
    ]  # fmt: skip
    store.stop_worker(W, "consumer", None, True)
    assert [(w.kind, w.queue) for w in registrations(store)] == [("manager", "a")]


def test_workers_shows_every_registration_newest_first_and_the_jobs_held_now(
    store: Store, clock
) -> None:
    store.register("old", "consumer", "q", "h", 1)
    clock.advance(1)
    store.register("new", "consumer", "q", "h", 2)
    store.insert([job(str(i)) for i in range(4)])
    a, b = claim(store, limit=2, worker="old")
    clock.advance(1)
    [c] = claim(store, worker="new")
    [d] = claim(store, worker="new")
    store.complete([(d.id, d.token)])  # type: ignore[list-item]
    view = store.workers()
    assert view.now == START + 2
    assert [w.id for w in view.workers] == ["new", "old"]
    assert view.held == [("old", a.id, START + 1), ("old", b.id, START + 1),
                         ("new", c.id, START + 2)]  # fmt: skip


# -- housekeeping ------------------------------------------------------------------------------


def test_now_is_the_stores_clock(store: Store, clock) -> None:
    assert store.now() == START
    clock.advance(90.5)
    assert store.now() == START + 90.5


def test_maintain_drops_events_older_than_their_retention_with_their_links(
    store: Store, clock
) -> None:
    [job_id] = store.insert([job("x")])
    store.set_paused("q", True, "op")
    store.delete([999], "op", None)  # nothing: no event
    assert claim(store) == []  # paused
    store.set_status(job_id, "done", "op")
    clock.advance(100)
    store.set_paused("q", False, "op")
    store.requeue([job_id], True, "op", None)
    assert len(store.events(None, 10, 0)) == 4
    store.maintain(100, 3600)  # exactly that old stays
    assert len(store.events(None, 10, 0)) == 4
    clock.advance(1)
    store.maintain(100, 3600)
    assert [e.kind for e in store.events(None, 10, 0)] == ["requeue", "resume"]
    assert [e.kind for e in store.history(job_id)] == ["requeue"]


def test_maintain_forgets_workers_not_heard_from_within_their_retention(
    store: Store, clock
) -> None:
    store.register("quiet", "consumer", "q", "h", 1)
    store.register("chatty", "consumer", "q", "h", 2)
    clock.advance(3000)
    store.heartbeat_worker("chatty", "consumer", "q", 0)
    clock.advance(600)
    store.maintain(86400, 3600)
    assert [w.id for w in registrations(store)] == ["chatty", "quiet"]  # 3600 s: not yet
    clock.advance(1)
    store.maintain(86400, 3600)
    assert [w.id for w in registrations(store)] == ["chatty"]


def test_maintain_prunes_per_minute_counters_older_than_a_day_and_keeps_the_rest(
    store: Store, clock
) -> None:
    store.insert([job(str(i)) for i in range(3)])
    [a] = claim(store)
    store.complete([(a.id, a.token)])  # type: ignore[list-item]
    [b] = claim(store)
    store.fail(b.id, b.token, "ready", 0, "e", "e", "c")  # type: ignore[arg-type]
    minute = int(START // 60)
    clock.advance(1440 * 60)
    [c] = claim(store)
    store.complete([(c.id, c.token)])  # type: ignore[list-item]
    store.maintain(86400 * 30, 3600)
    per_minute = store.stats(EVERY_MINUTE).per_minute  # 1440 minutes ago: kept
    assert per_minute == {
        ("q", "done", minute): 1, ("q", "failed", minute): 1, ("q", "done", minute + 1440): 1,
    }  # fmt: skip
    clock.advance(60)
    store.maintain(86400 * 30, 3600)
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "done", minute + 1440): 1}
    counts = {k: n for k, n in store.stats(EVERY_MINUTE).counts.items() if n}
    assert counts == {("q", "done"): 2, ("q", "ready"): 1}
    assert store.check() == []


def test_maintain_folds_the_counters_of_connections_that_are_gone(
    backend: Backend, store: Store
) -> None:
    """PostgreSQL keeps counter rows per server connection; SQLite has one set."""
    for _ in range(3):
        writer = backend.open()
        writer.insert([job("x")])
        writer.insert([job("y", "other")])
        writer.close()
    store.insert([job("z")])
    before = store.stats(EVERY_MINUTE).counts

    def shards() -> int:
        return backend.sql("SELECT count(DISTINCT shard) FROM pq_counters")[0][0]

    deadline = time.monotonic() + 30
    store.maintain(86400, 3600)
    while backend.postgres and shards() > 2:  # the writers' backends end a moment after close
        assert time.monotonic() < deadline, "the counters of closed connections stayed apart"
        time.sleep(0.02)
        store.maintain(86400, 3600)
    assert shards() == 1 + backend.postgres  # folded into one, and the store's own
    assert store.stats(EVERY_MINUTE).counts == before == {("q", "ready"): 4, ("other", "ready"): 3}
    assert store.check() == []


def test_maintain_reports_whether_it_checkpointed(backend: Backend, store: Store) -> None:
    store.insert([job("x")])
    checkpointed = store.maintain(86400, 3600)
    assert checkpointed is (not backend.postgres)  # PostgreSQL checkpoints by itself
