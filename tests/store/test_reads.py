"""Reads: stats, count, rows, row, history, events, errors and check."""

from __future__ import annotations

import json

import pytest

from pq_core.errors import InvalidValue
from pq_core.store.base import JobFilter, Store

from .conftest import EVERY_MINUTE, START, Backend, claim, job

MINUTE = int(START // 60)


def counts(store: Store) -> dict[tuple[str, str], int]:
    return {k: n for k, n in store.stats(EVERY_MINUTE).counts.items() if n}


# -- stats -------------------------------------------------------------------------------------


def test_stats_counters_follow_every_change(store: Store, clock) -> None:
    assert store.stats(EVERY_MINUTE).counts == {} or counts(store) == {}
    store.insert([job(str(i)) for i in range(6)])
    assert counts(store) == {("q", "ready"): 6}
    a, b, c, d = claim(store, limit=4)
    assert counts(store) == {("q", "ready"): 2, ("q", "in_progress"): 4}
    store.complete([(a.id, a.token)])  # type: ignore[list-item]
    store.fail(b.id, b.token, "ready", 60, "e", "e", "c")  # type: ignore[arg-type]
    store.fail(c.id, c.token, "dead", 0, "e", "e", "c")  # type: ignore[arg-type]
    assert counts(store) == {("q", "ready"): 3, ("q", "in_progress"): 1, ("q", "done"): 1,
                             ("q", "dead"): 1}  # fmt: skip
    store.requeue([a.id, c.id], True, "op", None)
    assert counts(store) == {("q", "ready"): 5, ("q", "in_progress"): 1}
    store.delete([d.id, b.id], "op", None)
    assert counts(store) == {("q", "ready"): 4}
    for row in claim(store, limit=4):
        store.complete([(row.id, row.token)])  # type: ignore[list-item]
    clock.advance(10)
    store.purge("q", "done", 5, 3, "op")
    assert counts(store) == {("q", "done"): 1}
    assert store.check() == []


def test_stats_count_scheduled_jobs_and_the_oldest_ready_one(store: Store, clock) -> None:
    store.insert([job("first")])
    clock.advance(5)
    store.insert([job("later", delay=60), job("later too", delay=60)])
    store.insert([job("x", "other")])
    stats = store.stats(EVERY_MINUTE)
    assert stats.now == START + 5
    assert stats.scheduled == {"q": 2, "other": 0}
    assert stats.oldest_ready == {"q": START, "other": START + 5}
    clock.advance(60)
    assert store.stats(EVERY_MINUTE).scheduled == {"q": 0, "other": 0}  # due now: plain ready jobs
    claim(store, limit=3)
    stats = store.stats(EVERY_MINUTE)
    assert (stats.scheduled, stats.oldest_ready) == ({"other": 0}, {"other": START + 5})


def test_a_job_failing_into_back_off_is_scheduled(store: Store) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    store.fail(row.id, row.token, "ready", 30, "e", "e", "c")  # type: ignore[arg-type]
    assert store.stats(EVERY_MINUTE).scheduled == {"q": 1}
    assert store.count(JobFilter(scheduled=True)) == 1


def test_stats_count_completions_and_failures_per_minute(store: Store, clock) -> None:
    store.insert([job(str(i)) for i in range(6)])
    for row in claim(store, limit=2):
        store.complete([(row.id, row.token)])  # type: ignore[list-item]
    clock.advance(60)
    a, b, c = claim(store, limit=3)
    store.complete([(a.id, a.token)])  # type: ignore[list-item]
    store.fail(b.id, b.token, "ready", 0, "e", "e", "c")  # type: ignore[arg-type]
    store.fail(c.id, c.token, "dead", 0, "e", "e", "c")  # type: ignore[arg-type]
    assert store.stats(EVERY_MINUTE).per_minute == {
        ("q", "done", MINUTE): 2,
        ("q", "done", MINUTE + 1): 1,
        ("q", "failed", MINUTE + 1): 2,
    }
    assert store.stats(0).per_minute == {  # only the minutes asked for: this one
        ("q", "done", MINUTE + 1): 1,
        ("q", "failed", MINUTE + 1): 2,
    }
    clock.advance(10)
    store.purge("q", "done", 0, 100, "op")  # completions stay counted once the jobs are gone
    assert store.stats(EVERY_MINUTE).per_minute[("q", "done", MINUTE)] == 2


def test_a_job_done_twice_counts_twice(store: Store) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    store.complete([(row.id, row.token)])  # type: ignore[list-item]
    store.requeue([row.id], False, "op", None)
    [again] = claim(store)
    store.complete([(again.id, again.token)])  # type: ignore[list-item]
    assert store.stats(EVERY_MINUTE).per_minute == {("q", "done", MINUTE): 2}


# -- count -------------------------------------------------------------------------------------


@pytest.fixture
def mixed(store: Store, clock) -> dict[str, int]:
    """ready, scheduled, in_progress, done, failing (ready, backing off) and dead jobs in "q",
    one ready job in "other"."""
    ids = {}
    [ids["failing"], ids["dead"], ids["done"], ids["held"]] = store.insert(
        [job("fails"), job("dies"), job("is done"), job("is held")]
    )
    [failing, dead, done, _held] = claim(store, limit=4)
    store.fail(failing.id, failing.token, "ready", 100, "Timeout after 3 s", "Timeout after # s",
               "c")  # type: ignore[arg-type]  # fmt: skip
    store.fail(dead.id, dead.token, "dead", 0, "Timeout after 9 s", "Timeout after # s", "c")  # type: ignore[arg-type]
    store.complete([(done.id, done.token)])  # type: ignore[list-item]
    [ids["ready"]] = store.insert([job("plain ready")])
    [ids["scheduled"]] = store.insert([job("later", delay=100)])
    [ids["other"]] = store.insert([job("plain ready", "other")])
    return ids


@pytest.mark.parametrize(
    "where, expected",
    [
        (JobFilter(), ["failing", "dead", "done", "held", "ready", "scheduled", "other"]),
        (JobFilter(queue="q"), ["failing", "dead", "done", "held", "ready", "scheduled"]),
        (JobFilter(queue="other"), ["other"]),
        (JobFilter(queue="nowhere"), []),
        (JobFilter(statuses=("ready",)), ["failing", "ready", "scheduled", "other"]),
        (JobFilter(queue="q", statuses=("done", "dead")), ["dead", "done"]),
        (JobFilter(statuses=("in_progress",)), ["held"]),
        (JobFilter(scheduled=True), ["failing", "scheduled"]),
        (JobFilter(scheduled=False), ["dead", "done", "held", "ready", "other"]),
        (JobFilter(queue="q", statuses=("ready",), scheduled=False), ["ready"]),
        (JobFilter(error="Timeout after # s"), ["failing", "dead"]),
        (JobFilter(error="Timeout after # s", statuses=("dead",)), ["dead"]),
        (JobFilter(error="no such error"), []),
        (JobFilter(search="plain"), ["ready", "other"]),
        (JobFilter(search="PLAIN READY", queue="other"), ["other"]),
        (JobFilter(search="timeout after 9"), ["dead"]),  # the error text is searched too
        (JobFilter(search="host:1"), ["held", "failing", "dead", "done"]),  # and the worker
        (JobFilter(search="is ", statuses=("done", "in_progress")), ["done", "held"]),
    ],
)
def test_count_rows_and_matching_ids_agree_for_every_filter(
    store: Store, mixed: dict[str, int], where: JobFilter, expected: list[str]
) -> None:
    wanted = sorted(mixed[name] for name in expected)
    assert store.count(where) == len(wanted)
    listed = [r.id for r in store.rows(where, 100, 0, False, None)]
    assert (sorted(listed) if where.scheduled else listed) == wanted  # scheduled: by time
    assert store.matching_ids(where, 0, 100) == wanted


def test_a_search_finds_a_job_by_its_id(store: Store) -> None:
    ids = store.insert([job(f"payload {i}") for i in range(12)])
    assert [r.id for r in store.rows(JobFilter(search=f" {ids[11]} "), 10, 0, False, None)] == [
        ids[11]
    ]


# -- rows --------------------------------------------------------------------------------------


def test_rows_come_newest_or_oldest_first_a_page_at_a_time(store: Store) -> None:
    ids = store.insert([job(str(i)) for i in range(7)])
    every = JobFilter()
    assert [r.id for r in store.rows(every, 3, 0, True, None)] == ids[::-1][:3]
    assert [r.id for r in store.rows(every, 3, 3, True, None)] == ids[::-1][3:6]
    assert [r.id for r in store.rows(every, 3, 6, True, None)] == ids[:1]
    assert [r.id for r in store.rows(every, 3, 0, False, None)] == ids[:3]
    assert [r.id for r in store.rows(every, 3, 0, True, ids[4])] == [ids[3], ids[2], ids[1]]
    assert [r.id for r in store.rows(every, 3, 0, False, ids[4])] == [ids[5], ids[6]]
    assert [r.id for r in store.rows(every, 3, 1, False, ids[1])] == [ids[3], ids[4], ids[5]]


@pytest.mark.parametrize(
    "search, expected",
    [
        ("%", ["100% sure"]),
        ("0%", ["100% sure"]),
        ("_", ["a_b"]),
        ("\\", ["back\\slash"]),
        ("'", ["it's"]),
        ('"', ['say "hi"']),
        ("%%", []),
        ("*", []),
        ("wörld", ["hello wörld"]),
        ("after", ["before\x00after"]),  # text after a NUL
        ("binary", [b"\xff\xfe binary \x00 tail"]),  # in a payload that is not UTF-8
        ("; DROP TABLE pq_jobs; --", []),
    ],
)
def test_search_matches_hostile_text_literally(
    store: Store, search: str, expected: list[str | bytes]
) -> None:
    payloads: list[str | bytes] = [
        "100% sure", "a_b", "back\\slash", "it's", 'say "hi"', "hello wörld", "before\x00after",
        b"\xff\xfe binary \x00 tail", "plain",
    ]  # fmt: skip
    for payload in payloads:
        store.insert([job(payload)])
    where = JobFilter(search=search)
    assert [r.payload for r in store.rows(where, 100, 0, False, None)] == expected
    assert store.count(where) == len(expected)
    assert store.count(JobFilter()) == len(payloads)  # nothing was dropped


@pytest.mark.parametrize("search", ["\x00", "nul \x00 inside", "\ud800"])
def test_a_search_no_backend_can_look_for_is_invalid_everywhere(store: Store, search: str) -> None:
    store.insert([job("before\x00after"), job("x")])
    for read in (
        lambda w: store.rows(w, 10, 0, True, None),
        store.count,
        lambda w: store.matching_ids(w, 0, 10),
    ):
        with pytest.raises(InvalidValue, match="search text"):
            read(JobFilter(search=search))
    assert store.count(JobFilter()) == 2  # the store carries on


def test_row_is_one_job_or_none(store: Store) -> None:
    [job_id] = store.insert([job("x")])
    assert store.row(job_id).payload == "x"  # type: ignore[union-attr]
    assert store.row(job_id + 1) is None


# -- history, events, errors -------------------------------------------------------------------


def test_history_is_a_jobs_failures_and_the_events_that_name_it_oldest_first(
    store: Store, clock
) -> None:
    [job_id, other] = store.insert([job("x", max_attempts=2), job("y", max_attempts=2)])
    [row, _] = claim(store, limit=2)
    clock.advance(1)
    store.fail(row.id, row.token, "ready", 0, "first", "first", "c1")  # type: ignore[arg-type]
    clock.advance(1)
    [row] = claim(store)
    store.fail(row.id, row.token, "dead", 0, "second", "second", "c2")  # type: ignore[arg-type]
    clock.advance(1)
    store.requeue([job_id, other], True, "op", None)
    clock.advance(1)
    store.set_status(job_id, "done", "op2")
    entries = [(e.at - START, e.kind, e.actor, e.detail) for e in store.history(job_id)]
    assert entries == [
        (1, "failed", "c1", "attempt 1/2: first"),
        (2, "dead", "c2", "attempt 2/2: second"),
        (3, "requeue", "op", f"requeued 2 job(s): {job_id}, {other}"),
        (4, "set done", "op2", f"job {job_id} set to done"),
    ]
    assert all(e.queue == "q" for e in store.history(job_id))
    assert [json.loads(e.job_ids) for e in store.history(job_id)][:2] == [[job_id], [job_id]]
    assert store.history(999) == []


def test_events_are_the_activity_log_newest_first_per_queue_or_all(store: Store, clock) -> None:
    for queue in ("a", "b", "a"):
        store.set_paused(queue, not store.is_paused(queue), f"op {queue}")
        clock.advance(1)
    everything = store.events(None, 10, 0)
    assert [(e.queue, e.kind, e.at) for e in everything] == [
        ("a", "resume", START + 2), ("b", "pause", START + 1), ("a", "pause", START),
    ]  # fmt: skip
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    assert [e.kind for e in store.events("a", 10, 0)] == ["resume", "pause"]
    assert store.events(None, 1, 1) == everything[1:2]
    assert store.events("nowhere", 10, 0) == []


def test_an_event_lists_at_most_a_thousand_ids_but_links_every_job(store: Store) -> None:
    ids = store.insert([job(str(i)) for i in range(1005)])
    store.delete(ids[:-1], "op", None)
    [event] = store.events(None, 10, 0)
    assert event.count == 1004 and len(json.loads(event.job_ids)) == 1000
    store.requeue([ids[-1]], True, "op", None)  # ready: not requeued, no event
    assert len(store.events(None, 10, 0)) == 1


def test_errors_group_failing_and_dead_jobs_by_signature_biggest_first(store: Store, clock) -> None:
    store.insert([job(str(i)) for i in range(5)])
    store.insert([job("x", "other")])
    rows = claim(store, limit=5)
    [elsewhere] = claim(store, "other")
    for row, status, error, sig in [
        (rows[0], "ready", "Timeout 1", "Timeout #"),
        (rows[1], "dead", "Timeout 2", "Timeout #"),
        (rows[2], "ready", "KeyError: 'a'", "KeyError"),
    ]:
        store.fail(row.id, row.token, status, 60, error, sig, "c")  # type: ignore[arg-type]
        clock.advance(1)
    store.fail(elsewhere.id, elsewhere.token, "dead", 0, "Timeout 3", "Timeout #", "c")  # type: ignore[arg-type]
    store.complete([(rows[3].id, rows[3].token)])  # type: ignore[list-item]
    groups = store.errors(None, 10)
    assert [(g.signature, g.count, g.dead, g.queues) for g in groups] == [
        ("Timeout #", 3, 2, ("other", "q")),
        ("KeyError", 1, 0, ("q",)),
    ]
    assert groups[0].newest_at == START + 3 and groups[0].example == "Timeout 3"
    assert [(g.signature, g.count) for g in store.errors("q", 10)] == [
        ("Timeout #", 2), ("KeyError", 1),
    ]  # fmt: skip
    assert len(store.errors(None, 1)) == 1
    store.requeue([elsewhere.id], True, "op", None)  # runs again: no longer failing
    assert [(g.signature, g.count, g.queues) for g in store.errors(None, 10)] == [
        ("Timeout #", 2, ("q",)), ("KeyError", 1, ("q",)),
    ]  # fmt: skip


# -- check -------------------------------------------------------------------------------------


def test_check_finds_nothing_wrong_in_a_store_pq_wrote(store: Store, clock) -> None:
    store.insert([job(str(i)) for i in range(4)])
    rows = claim(store, limit=3)
    store.complete([(rows[0].id, rows[0].token)])  # type: ignore[list-item]
    clock.advance(60)
    store.take_back([], lambda held: [], "m")
    store.delete([rows[1].id], "op", None)
    assert store.check() == []


def test_check_reports_a_counter_that_disagrees_with_the_jobs(
    backend: Backend, store: Store
) -> None:
    store.insert([job("a"), job("b")])
    backend.sql("UPDATE pq_counters SET n = n + 5 WHERE queue = 'q' AND kind = 'ready'")
    assert store.check() == ["counter for queue 'q' status ready says 7, the jobs say 2"]
