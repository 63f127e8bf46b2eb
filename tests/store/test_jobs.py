"""Jobs: insert, claim, and the four ways a claim is settled (complete, fail, extend, release),
with every outcome each can have."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pq_core.errors import InvalidValue
from pq_core.store.base import Held, JobFilter, JobRow, Outcome, Store, Verdict

from .conftest import EVERY_MINUTE, START, claim, job, new_token

WORKER = "host:1:1:boot:ns"


def counts(store: Store) -> dict[tuple[str, str], int]:
    """The status counters, without the zeros."""
    return {k: n for k, n in store.stats(EVERY_MINUTE).counts.items() if n}


# -- insert ------------------------------------------------------------------------------------


def test_insert_returns_ascending_ids_and_stores_each_job_ready_at_now_plus_its_delay(
    store: Store,
) -> None:
    first = store.insert([job("a")])
    second = store.insert([job("b", priority=5, max_attempts=7, delay=30)])
    assert first[0] < second[0]
    a, b = store.row(first[0]), store.row(second[0])
    assert a is not None and b is not None
    assert (a.queue, a.payload, a.encoding, a.status, a.priority, a.attempts, a.max_attempts) == (
        "q", "a", "str", "ready", 0, 0, 3,
    )  # fmt: skip
    assert (a.created_at, a.updated_at, a.available_at) == (START, START, START)
    assert (a.lease_expires_at, a.worker, a.last_error, a.dedup_key, a.token) == (None,) * 5
    assert (b.priority, b.max_attempts, b.available_at) == (5, 7, START + 30)


def test_a_batch_insert_stores_every_job_in_order_with_ascending_ids(store: Store) -> None:
    ids = store.insert([job(f"p{i}", priority=1, delay=5) for i in range(50)])
    assert ids == sorted(ids) and len(set(ids)) == 50
    rows = [store.row(i) for i in ids]
    assert [r.payload for r in rows if r] == [f"p{i}" for i in range(50)]
    assert {(r.priority, r.available_at) for r in rows if r} == {(1, START + 5)}
    assert counts(store) == {("q", "ready"): 50}
    assert store.insert([job("after")])[0] > ids[-1]


@pytest.mark.parametrize(
    "batch",
    [
        [job("a"), job("b", "other")],
        [job("a"), job("b", priority=1)],
        [job("a"), job("b", max_attempts=9)],
        [job("a"), job("b", delay=1)],
        [job("a", dedup_key="k1"), job("b", dedup_key="k2")],
    ],
    ids=["queues", "priority", "max_attempts", "delay", "dedup_key"],
)
def test_a_batch_of_mixed_queues_options_or_dedup_keys_is_refused_and_stores_nothing(
    store: Store, batch: list
) -> None:
    with pytest.raises(InvalidValue, match="one queue and one set of options"):
        store.insert(batch)
    assert counts(store) == {} and store.rows(JobFilter(), 10, 0, False, None) == []


@pytest.mark.parametrize(
    "payload, encoding",
    [
        ("plain text", "str"),
        ("", "str"),
        ("NUL \x00 inside, wörld, 🎉", "str"),
        ('{"a": [1, 2, {"b": null}]}', "json"),
        (b"\x00\xff\xfe not utf-8 \x80", "bytes"),
        (b"", "bytes"),
    ],
)
def test_every_payload_comes_back_as_it_was_stored(
    store: Store, payload: str | bytes, encoding: str
) -> None:
    [job_id] = store.insert([job(payload, encoding=encoding)])
    row = store.row(job_id)
    assert row is not None
    assert (row.payload, row.encoding) == (payload, encoding)
    assert type(row.payload) is type(payload)
    [claimed] = claim(store)
    assert (claimed.payload, claimed.encoding) == (payload, encoding)


def test_a_live_dedup_key_returns_the_live_jobs_id_and_stores_nothing(store: Store) -> None:
    [first] = store.insert([job("first", dedup_key="k")])
    assert store.insert([job("second", dedup_key="k")]) == [first]
    [held] = claim(store)
    assert held.id == first
    assert store.insert([job("third", dedup_key="k")]) == [first]  # in progress is live too
    assert counts(store) == {("q", "in_progress"): 1}
    assert store.row(first).payload == "first"  # type: ignore[union-attr]


def test_a_dedup_key_is_per_queue(store: Store) -> None:
    [a] = store.insert([job("a", dedup_key="k")])
    [b] = store.insert([job("b", "other", dedup_key="k")])
    assert a != b


@pytest.mark.parametrize("finish", ["done", "dead"])
def test_a_finished_jobs_dedup_key_is_free_again(store: Store, finish: str) -> None:
    [first] = store.insert([job("first", dedup_key="k")])
    [held] = claim(store)
    if finish == "done":
        assert store.complete([(held.id, held.token)]) == [Outcome.CHANGED]  # type: ignore[list-item]
    else:
        assert store.fail(held.id, held.token, "dead", 0, "e", "e", "t")[0] is Outcome.CHANGED  # type: ignore[arg-type]
    [second] = store.insert([job("second", dedup_key="k")])
    assert second != first
    assert store.insert([job("third", dedup_key="k")]) == [second]
    assert store.row(first).dedup_key == "k"  # type: ignore[union-attr]


# -- claim -------------------------------------------------------------------------------------


def test_claim_hands_out_best_priority_first_then_earliest_available_then_lowest_id(
    store: Store, clock
) -> None:
    named = {}
    for name, priority, delay in [
        ("a", 0, 0), ("b", 5, 0), ("c", 5, 10), ("d", 0, 5), ("e", 0, 0), ("f", -3, 0),
    ]:  # fmt: skip
        [named[name]] = store.insert([job(name, priority=priority, delay=delay)])
    clock.advance(20)
    order = [r.payload for r in claim(store, limit=10)]
    assert order == ["b", "c", "a", "e", "d", "f"]


def test_claim_one_at_a_time_follows_the_same_order(store: Store, clock) -> None:
    for name, priority, delay in [("a", 0, 0), ("b", 5, 0), ("c", 5, 10), ("d", 0, 5)]:
        store.insert([job(name, priority=priority, delay=delay)])
    clock.advance(20)
    assert [claim(store)[0].payload for _ in range(4)] == ["b", "c", "a", "d"]
    assert claim(store) == []


def test_claim_takes_at_most_limit_jobs(store: Store) -> None:
    store.insert([job(str(i)) for i in range(5)])
    assert [r.payload for r in claim(store, limit=3)] == ["0", "1", "2"]
    assert [r.payload for r in claim(store, limit=3)] == ["3", "4"]
    assert claim(store, limit=3) == []


def test_claim_hands_out_only_jobs_of_its_queue_that_are_ready_and_due(store: Store, clock) -> None:
    [later] = store.insert([job("later", delay=60)])
    store.insert([job("elsewhere", "other")])
    [held_id] = store.insert([job("held")])
    claim(store)
    [done_id] = store.insert([job("done")])
    [done] = claim(store)
    store.complete([(done.id, done.token)])  # type: ignore[list-item]
    assert claim(store, limit=10) == []
    clock.advance(59)
    assert claim(store, limit=10) == []
    clock.advance(1)
    assert [r.id for r in claim(store, limit=10)] == [later]
    assert {store.row(held_id).status, store.row(done_id).status} == {"in_progress", "done"}  # type: ignore[union-attr]


def test_a_claim_sets_attempts_token_worker_and_lease(store: Store, clock) -> None:
    store.insert([job("x")])
    clock.advance(7)
    [row] = claim(store, lease=45, worker="w-1", token="tok-1")
    assert (row.status, row.attempts, row.token, row.worker) == ("in_progress", 1, "tok-1", "w-1")
    assert (row.updated_at, row.lease_expires_at) == (START + 7, START + 52)
    assert store.row(row.id) == row


def test_every_job_of_one_claim_carries_its_token(store: Store) -> None:
    store.insert([job(str(i)) for i in range(3)])
    rows = claim(store, limit=3, token="shared")
    assert {r.token for r in rows} == {"shared"}


def test_a_paused_queue_hands_out_nothing_and_others_carry_on(store: Store) -> None:
    store.insert([job("a"), job("b")])
    store.insert([job("c", "other")])
    assert store.set_paused("q", True, "op") is True
    assert claim(store, limit=5) == []
    assert [r.payload for r in claim(store, "other")] == ["c"]
    assert store.set_paused("q", False, "op") is True
    assert [r.payload for r in claim(store, limit=5)] == ["a", "b"]


def test_a_claims_lease_is_capped_by_the_lease_ceiling(store: Store) -> None:
    store.insert([job(str(i)) for i in range(3)])
    store.set_lease_cap(30)
    assert claim(store, lease=60)[0].lease_expires_at == START + 30
    assert claim(store, lease=10)[0].lease_expires_at == START + 10  # below it: as asked
    store.set_lease_cap(None)
    assert claim(store, lease=600)[0].lease_expires_at == START + 600


def test_a_fused_ack_marks_the_previous_claim_done_and_claims_the_next(store: Store) -> None:
    store.insert([job("a"), job("b")])
    [a] = claim(store)
    rows, outcomes = store.claim("q", 1, 60, WORKER, new_token(), [(a.id, a.token)])  # type: ignore[list-item]
    assert outcomes == [Outcome.CHANGED]
    assert [r.payload for r in rows] == ["b"]
    assert store.row(a.id).status == "done"  # type: ignore[union-attr]
    assert counts(store) == {("q", "done"): 1, ("q", "in_progress"): 1}


def test_a_fused_ack_reports_each_claims_outcome_in_order(store: Store) -> None:
    store.insert([job("a"), job("b"), job("c")])
    [a] = claim(store)
    [b] = claim(store)
    ack = [(a.id, "made-up"), (a.id, a.token), (b.id, "made-up"), (a.id + 1000, "x")]
    rows, outcomes = store.claim("q", 5, 60, WORKER, new_token(), ack)  # type: ignore[arg-type]
    assert outcomes == [Outcome.LOST, Outcome.CHANGED, Outcome.LOST, Outcome.MISSING]
    assert [r.payload for r in rows] == ["c"]
    assert store.row(b.id).status == "in_progress"  # type: ignore[union-attr]


def test_a_paused_queue_still_takes_the_fused_ack(store: Store) -> None:
    store.insert([job("a"), job("b")])
    [a] = claim(store)
    store.set_paused("q", True, "op")
    rows, outcomes = store.claim("q", 1, 60, WORKER, new_token(), [(a.id, a.token)])  # type: ignore[list-item]
    assert (rows, outcomes) == ([], [Outcome.CHANGED])
    assert store.row(a.id).status == "done"  # type: ignore[union-attr]


def test_an_acked_job_is_not_handed_out_again_by_the_same_claim(store: Store, clock) -> None:
    store.insert([job("a")])
    [a] = claim(store, lease=10)
    clock.advance(11)
    store.take_back([], lambda held: [_ready(h) for h in held], "manager")  # ready again
    rows, outcomes = store.claim("q", 5, 60, WORKER, new_token(), [(a.id, a.token)])  # type: ignore[list-item]
    assert (rows, outcomes) == ([], [Outcome.CHANGED])  # a late done of a job taken back
    assert store.row(a.id).status == "done"  # type: ignore[union-attr]


# -- settling a claim: every outcome -----------------------------------------------------------


def _ready(held: Held) -> Verdict:
    return Verdict(held, "ready", "lease expired")


def _dead(held: Held) -> Verdict:
    return Verdict(held, "dead", "lease expired")


Scenario = Callable[[Store, "object"], tuple[int, str]]


def held(store: Store, clock: object) -> tuple[int, str]:
    """The job's current claim, held under a live lease."""
    [row] = claim(store)
    return row.id, row.token  # type: ignore[return-value]


def settled(store: Store, clock: object) -> tuple[int, str]:
    """A claim its consumer already marked done."""
    job_id, token = held(store, clock)
    store.complete([(job_id, token)])
    return job_id, token


def taken_back(store: Store, clock) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A claim whose lease ran out and that the manager put back; nobody claimed it since."""
    [row] = claim(store, lease=10)
    clock.advance(11)
    [verdict] = store.take_back([], lambda hs: [_ready(h) for h in hs], "manager")
    assert verdict.held.id == row.id
    return row.id, row.token  # type: ignore[return-value]


def taken_back_dead(store: Store, clock) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A claim taken back and dead-lettered; nobody claimed it since."""
    [row] = claim(store, lease=10)
    clock.advance(11)
    store.take_back([], lambda hs: [_dead(h) for h in hs], "manager")
    return row.id, row.token  # type: ignore[return-value]


def previous_claim(store: Store, clock) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The token of the claim before the current one."""
    job_id, token = taken_back(store, clock)
    [again] = claim(store)
    assert again.id == job_id
    return job_id, token


def two_claims_old(store: Store, clock) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    job_id, token = previous_claim(store, clock)
    clock.advance(100)
    store.take_back([], lambda hs: [_ready(h) for h in hs], "manager")
    [again] = claim(store)
    assert again.id == job_id
    return job_id, token


def claimed_since_then_requeued(store: Store, clock) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Claimed again since; that claim finished and an operator requeued the job."""
    job_id, token = previous_claim(store, clock)
    [row] = [store.row(job_id)]
    store.complete([(job_id, row.token)])  # type: ignore[union-attr, list-item]
    assert store.requeue([job_id], True, "operator", None) == [job_id]
    return job_id, token


def made_up_token(store: Store, clock: object) -> tuple[int, str]:
    job_id, _token = held(store, clock)
    return job_id, "never-handed-out"


def never_claimed(store: Store, clock: object) -> tuple[int, str]:
    [row] = store.rows(JobFilter(), 1, 0, False, None)
    return row.id, "never-handed-out"


def missing(store: Store, clock: object) -> tuple[int, str]:
    return 10_000, "whatever"


SCENARIOS: dict[str, Scenario] = {
    "held": held,
    "settled": settled,
    "taken_back": taken_back,
    "taken_back_dead": taken_back_dead,
    "previous_claim": previous_claim,
    "two_claims_old": two_claims_old,
    "claimed_since_then_requeued": claimed_since_then_requeued,
    "made_up_token": made_up_token,
    "never_claimed": never_claimed,
    "missing": missing,
}

C, A, L, M = Outcome.CHANGED, Outcome.ALREADY, Outcome.LOST, Outcome.MISSING
# scenario → outcome of (complete, fail, extend, release)
EXPECTED = {
    "held": (C, C, C, C),
    "settled": (A, A, A, A),
    "taken_back": (C, A, A, A),  # a late done of a job not claimed since still counts
    "taken_back_dead": (C, A, A, A),
    "previous_claim": (L, L, L, L),
    "two_claims_old": (L, L, L, L),
    "claimed_since_then_requeued": (L, L, L, L),
    "made_up_token": (L, L, L, L),
    "never_claimed": (L, L, L, L),
    "missing": (M, M, M, M),
}


def _settle(store: Store, how: str, job_id: int, token: str) -> Outcome:
    if how == "complete":
        [outcome] = store.complete([(job_id, token)])
        return outcome
    if how == "fail":
        return store.fail(job_id, token, "ready", 10, "boom", "boom", "consumer")[0]
    if how == "extend":
        return store.extend(job_id, token, 120)[0]
    return store.release(job_id, token)


def _snapshot(store: Store) -> tuple[list[JobRow], dict, list]:
    stats = store.stats(EVERY_MINUTE)
    return (
        store.rows(JobFilter(), 100, 0, False, None),
        {k: n for k, n in stats.counts.items() if n},
        sorted(stats.per_minute.items()),
    )


@pytest.mark.parametrize("how", ["complete", "fail", "extend", "release"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_settlement_changes_only_its_own_live_claim(
    store: Store, clock, scenario: str, how: str
) -> None:
    store.insert([job("x")])
    job_id, token = SCENARIOS[scenario](store, clock)
    expected = EXPECTED[scenario][["complete", "fail", "extend", "release"].index(how)]
    clock.advance(1)
    before = _snapshot(store)
    assert _settle(store, how, job_id, token) is expected
    if expected is not Outcome.CHANGED:
        assert _snapshot(store) == before, "an unsuccessful settlement changed something"


def test_complete_of_a_held_claim_marks_it_done_now(store: Store, clock) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    clock.advance(3)
    assert store.complete([(row.id, row.token)]) == [Outcome.CHANGED]  # type: ignore[list-item]
    done = store.row(row.id)
    assert (done.status, done.updated_at, done.lease_expires_at) == ("done", START + 3, None)  # type: ignore[union-attr]
    assert done.token == row.token and done.attempts == 1  # type: ignore[union-attr]


def test_complete_of_many_claims_reports_each_in_order(store: Store) -> None:
    store.insert([job(str(i)) for i in range(4)])
    a, b, c = claim(store, limit=3)
    store.complete([(c.id, c.token)])  # type: ignore[list-item]
    claims = [(b.id, b.token), (99_999, "x"), (c.id, c.token), (a.id, "made-up"), (a.id, a.token)]
    assert store.complete(claims) == [  # type: ignore[arg-type]
        Outcome.CHANGED, Outcome.MISSING, Outcome.ALREADY, Outcome.LOST, Outcome.CHANGED,
    ]  # fmt: skip
    assert counts(store) == {("q", "done"): 3, ("q", "ready"): 1}


def test_fail_to_ready_backs_off_records_the_error_and_counts_a_failure(
    store: Store, clock
) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    clock.advance(2)
    outcome, status = store.fail(row.id, row.token, "ready", 30, "Boom: 17", "Boom: #", "c-1")  # type: ignore[arg-type]
    assert (outcome, status) == (Outcome.CHANGED, "ready")
    failed = store.row(row.id)
    assert failed is not None
    assert (failed.status, failed.available_at, failed.last_error) == (
        "ready", START + 32, "Boom: 17",
    )  # fmt: skip
    assert (failed.lease_expires_at, failed.attempts) == (None, 1)
    [entry] = store.history(row.id)
    assert (entry.kind, entry.actor, entry.at) == ("failed", "c-1", START + 2)
    assert entry.detail == "attempt 1/3: Boom: 17"
    minute = int((START + 2) // 60)
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "failed", minute): 1}
    assert [(e.signature, e.count, e.dead) for e in store.errors(None, 10)] == [("Boom: #", 1, 0)]
    assert claim(store) == []  # backing off
    clock.advance(30)
    assert claim(store)[0].attempts == 2


def test_fail_to_dead_keeps_the_job_for_an_operator(store: Store) -> None:
    store.insert([job("x", max_attempts=1)])
    [row] = claim(store)
    outcome, status = store.fail(row.id, row.token, "dead", 0, "fatal", "fatal", "c")  # type: ignore[arg-type]
    assert (outcome, status) == (Outcome.CHANGED, "dead")
    assert store.history(row.id)[0].kind == "dead"
    assert counts(store) == {("q", "dead"): 1}
    assert claim(store) == []


def test_fail_without_an_error_says_failed(store: Store) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    store.fail(row.id, row.token, "ready", 0, None, None, "c")  # type: ignore[arg-type]
    assert store.history(row.id)[0].detail == "attempt 1/3: failed"
    assert store.row(row.id).last_error is None  # type: ignore[union-attr]


def test_fail_reports_the_status_a_lost_claim_left_the_job_in(store: Store, clock) -> None:
    store.insert([job("x")])
    job_id, token = previous_claim(store, clock)
    assert store.fail(job_id, token, "ready", 0, "e", "e", "c") == (Outcome.LOST, "in_progress")
    assert store.fail(10_000, "t", "ready", 0, "e", "e", "c") == (Outcome.MISSING, None)


def test_extend_pushes_a_held_lease_to_now_plus_lease_capped_by_the_ceiling(
    store: Store, clock
) -> None:
    store.insert([job("x")])
    [row] = claim(store, lease=10)
    clock.advance(8)
    assert store.extend(row.id, row.token, 20) == (Outcome.CHANGED, (START + 8, START + 28))  # type: ignore[arg-type]
    store.set_lease_cap(5)
    assert store.extend(row.id, row.token, 20) == (Outcome.CHANGED, (START + 8, START + 13))  # type: ignore[arg-type]
    assert store.row(row.id).lease_expires_at == START + 13  # type: ignore[union-attr]
    assert store.extend(row.id, "made-up", 20) == (Outcome.LOST, None)


def test_release_puts_a_held_claim_back_at_once_without_costing_an_attempt(
    store: Store, clock
) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    clock.advance(4)
    assert store.release(row.id, row.token) is Outcome.CHANGED  # type: ignore[arg-type]
    back = store.row(row.id)
    assert back is not None
    assert (back.status, back.attempts, back.available_at, back.lease_expires_at) == (
        "ready", 0, START + 4, None,
    )  # fmt: skip
    assert store.stats(EVERY_MINUTE).per_minute == {}  # not a failure
    assert claim(store)[0].attempts == 1
