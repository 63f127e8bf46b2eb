"""Sweeps: what the manager sees (holders, expired) and take_back with its `decide` callback."""

from __future__ import annotations

import json
import threading
import time

from pq_core.store.base import Held, Outcome, Store, Verdict

from .conftest import EVERY_MINUTE, START, Backend, claim, job

ALIVE, GONE = "host:1:1:boot:ns", "host:2:2:boot:ns"


def ready(reason: str = "lease expired"):  # type: ignore[no-untyped-def]
    return lambda held: [Verdict(h, "ready", reason) for h in held]


def test_holders_are_the_distinct_workers_holding_jobs_in_progress(store: Store) -> None:
    assert store.holders() == []
    store.insert([job(str(i)) for i in range(5)])
    claim(store, limit=2, worker="a")
    claim(store, limit=1, worker="b")
    [finished] = claim(store, worker="c")
    store.complete([(finished.id, finished.token)])  # type: ignore[list-item]
    assert sorted(store.holders()) == ["a", "b"]


def test_a_job_forced_into_progress_has_no_holder(store: Store) -> None:
    [job_id] = store.insert([job()])
    assert store.set_status(job_id, "in_progress", "operator")
    assert store.holders() == []


def test_expired_says_whether_any_lease_has_run_out(store: Store, clock) -> None:
    assert store.expired() is False
    store.insert([job("a"), job("b")])
    claim(store, lease=10)
    claim(store, lease=20)
    clock.advance(9)
    assert store.expired() is False
    clock.advance(1)
    assert store.expired() is True  # at the very second it runs out
    store.take_back([], ready(), "manager")
    assert store.expired() is False
    clock.advance(10)
    assert store.expired() is True


def test_take_back_asks_about_expired_leases_and_gone_workers_only(store: Store, clock) -> None:
    store.insert([job("expired"), job("gone"), job("alive"), job("done")])
    [expired] = claim(store, lease=10, worker=ALIVE, token="t1")
    clock.advance(5)
    [gone] = claim(store, lease=3600, worker=GONE, token="t2")
    [alive] = claim(store, lease=3600, worker=ALIVE, token="t3")
    [done] = claim(store, lease=1, worker=GONE, token="t4")
    store.complete([(done.id, done.token)])  # type: ignore[list-item]
    clock.advance(5)
    asked: list[list[Held]] = []

    def decide(held: list[Held]) -> list[Verdict]:
        asked.append(held)
        return []

    assert store.take_back([GONE, "host:9:9:boot:ns"], decide, "manager") == []
    assert asked == [
        [
            Held(expired.id, "q", 1, 3, ALIVE, START, START + 10, "t1"),
            Held(gone.id, "q", 1, 3, GONE, START + 5, START + 3605, "t2"),
        ]
    ]
    assert store.row(alive.id).status == "in_progress"  # type: ignore[union-attr]
    assert store.row(expired.id).status == "in_progress"  # type: ignore[union-attr]


def test_take_back_applies_each_verdict_records_it_and_counts_a_failure(
    store: Store, clock
) -> None:
    store.insert([job("a"), job("b")])
    store.insert([job("c", max_attempts=1)])
    store.insert([job("d", "other")])
    held = claim(store, limit=3, lease=10, worker=ALIVE)
    [other] = claim(store, "other", lease=3600, worker=GONE)
    clock.advance(10)

    def decide(hs: list[Held]) -> list[Verdict]:
        return [
            Verdict(h, "dead" if h.attempts >= h.max_attempts else "ready",
                    "worker gone" if h.worker == GONE else "lease expired")
            for h in hs
        ]  # fmt: skip

    verdicts = store.take_back([GONE], decide, "manager m")
    assert sorted((v.held.id, v.status, v.reason) for v in verdicts) == [
        (held[0].id, "ready", "lease expired"),
        (held[1].id, "ready", "lease expired"),
        (held[2].id, "dead", "lease expired"),
        (other.id, "ready", "worker gone"),
    ]
    a = store.row(held[0].id)
    assert a is not None
    assert (a.status, a.available_at, a.updated_at, a.lease_expires_at) == (
        "ready", START + 10, START + 10, None,
    )  # fmt: skip
    assert a.last_error == "taken back by the manager: lease expired"
    assert (a.attempts, a.token, a.worker) == (1, held[0].token, ALIVE)  # the claim's marks stay
    assert store.row(held[2].id).status == "dead"  # type: ignore[union-attr]
    assert store.row(other.id).last_error == "taken back by the manager: worker gone"  # type: ignore[union-attr]
    events = sorted((e.queue, e.kind, e.actor, e.count, json.loads(e.job_ids))
                    for e in store.events(None, 10, 0))  # fmt: skip
    assert events == [
        ("other", "requeue", "manager m", 1, [other.id]),
        ("q", "dead", "manager m", 1, [held[2].id]),
        ("q", "requeue", "manager m", 2, [held[0].id, held[1].id]),
    ]
    [event] = [e for e in store.history(held[0].id) if e.kind == "requeue"]
    assert event.detail == "requeued 2 job(s): lease expired"
    minute = int((START + 10) // 60)
    assert store.stats(EVERY_MINUTE).per_minute == {
        ("q", "failed", minute): 3,
        ("other", "failed", minute): 1,
    }
    counts = {k: n for k, n in store.stats(EVERY_MINUTE).counts.items() if n}
    assert counts == {("q", "ready"): 2, ("q", "dead"): 1, ("other", "ready"): 1}
    sigs = {(e.signature, e.count, e.dead) for e in store.errors(None, 10)}
    assert sigs == {
        ("taken back by the manager: lease expired", 3, 1),
        ("taken back by the manager: worker gone", 1, 0),
    }


def test_jobs_decide_leaves_out_stay_as_they_are(store: Store, clock) -> None:
    store.insert([job("a"), job("b")])
    a, b = claim(store, limit=2, lease=10)
    clock.advance(10)
    store.take_back([], lambda hs: [Verdict(h, "ready", "x") for h in hs if h.id == b.id], "m")
    assert store.row(a.id).status == "in_progress"  # type: ignore[union-attr]
    assert store.row(b.id).status == "ready"  # type: ignore[union-attr]
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "failed", int((START + 10) // 60)): 1}


def test_a_job_its_consumer_settled_since_the_manager_looked_is_left_alone(store: Store) -> None:
    store.insert([job("a")])
    [row] = claim(store, lease=3600, worker=GONE)
    gone = store.holders()
    assert gone == [GONE]
    assert store.complete([(row.id, row.token)]) == [Outcome.CHANGED]  # type: ignore[list-item]
    asked: list[list[Held]] = []
    assert store.take_back(gone, lambda hs: asked.append(hs) or ready()(hs), "m") == []
    assert asked == [[]]
    assert store.row(row.id).status == "done"  # type: ignore[union-attr]
    assert store.events(None, 10, 0) == []
    assert [k for k in store.stats(EVERY_MINUTE).per_minute if k[1] == "failed"] == []


def test_a_consumer_settling_while_take_back_decides_waits_and_then_settles_late(
    backend: Backend, store: Store, clock
) -> None:
    store.insert([job("a")])
    [row] = claim(store, lease=10)
    clock.advance(10)
    consumer = backend.open()
    outcome: list[Outcome] = []
    settler = threading.Thread(
        target=lambda: outcome.extend(consumer.complete([(row.id, row.token)]))  # type: ignore[list-item]
    )

    def decide(held: list[Held]) -> list[Verdict]:
        settler.start()
        settler.join(0.2)  # it cannot get past the taken-back job's lock
        assert not outcome
        return ready()(held)

    [verdict] = store.take_back([], decide, "m")
    settler.join(30)
    assert verdict.held.id == row.id
    assert outcome == [Outcome.CHANGED]  # a late done of a job not claimed since
    assert store.row(row.id).status == "done"  # type: ignore[union-attr]


def test_two_take_backs_at_once_never_take_one_job_twice(
    backend: Backend, store: Store, clock
) -> None:
    store.insert([job(str(i)) for i in range(6)])
    claim(store, limit=6, lease=10)
    clock.advance(10)
    other = backend.open()
    second: list[list[Verdict]] = []
    rival = threading.Thread(target=lambda: second.append(other.take_back([], ready(), "m2")))

    def decide(held: list[Held]) -> list[Verdict]:
        rival.start()
        # PostgreSQL: the rival skips the locked jobs and finishes; SQLite: it waits its turn.
        deadline = time.monotonic() + 0.2
        while rival.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return ready()(held)

    first = store.take_back([], decide, "m1")
    rival.join(30)
    assert len(first) == 6 and second == [[]]
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "failed", int((START + 10) // 60)): 6}
    assert [e.actor for e in store.events(None, 10, 0)] == ["m1"]
