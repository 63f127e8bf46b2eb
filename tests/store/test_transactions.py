"""Transactions and errors: a call happens whole or not at all, a call made inside another's
transaction is part of it, and driver errors reach the caller as pq_core errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pq_core.errors import (
    ConnectionLost,
    InvalidValue,
    ItemNotFound,
    StoreError,
    StoreLocked,
    StoreReadOnly,
)
from pq_core.store.base import Held, JobFilter, Store, Verdict
from pq_core.store.sql import Plan, Stmt, write

from .conftest import EVERY_MINUTE, Backend, PostgresBackend, claim, job


class Midway:
    """Plans that change a job and then fail: as a bug in a plan, or as a statement the
    database refuses."""

    @write
    def finish_then_raise(self, job_id: int) -> Plan[None]:
        yield Stmt("UPDATE pq_jobs SET status = 'done', updated_at = :now WHERE id = :id",
                   {"id": job_id})  # fmt: skip
        yield from self._record("q", "delete", "test", "half-way", [job_id])  # type: ignore[attr-defined]
        raise RuntimeError("midway")

    @write
    def finish_then_bad_sql(self, job_id: int) -> Plan[None]:
        yield Stmt("UPDATE pq_jobs SET status = 'done', updated_at = :now WHERE id = :id",
                   {"id": job_id})  # fmt: skip
        yield Stmt("SELECT no_such_column FROM pq_jobs")


def everything(store: Store) -> tuple:
    stats = store.stats(EVERY_MINUTE)
    return (
        store.rows(JobFilter(), 1000, 0, False, None),
        {k: n for k, n in stats.counts.items() if n},
        stats.per_minute,
        store.events(None, 1000, 0),
        sorted(store.workers().workers),
    )


# -- atomicity ---------------------------------------------------------------------------------


def test_a_plan_that_raises_midway_changes_nothing(backend: Backend) -> None:
    store = backend.open(Midway)
    [job_id] = store.insert([job("x")])
    before = everything(store)
    with pytest.raises(RuntimeError, match="midway"):
        store.finish_then_raise(job_id)  # type: ignore[attr-defined]
    assert everything(store) == before
    assert store.insert([job("next")])  # the store carries on


def test_a_statement_refused_midway_undoes_the_plan_and_is_a_store_error(
    backend: Backend,
) -> None:
    store = backend.open(Midway)
    [job_id] = store.insert([job("x")])
    before = everything(store)
    with pytest.raises(StoreError, match="no_such_column"):
        store.finish_then_bad_sql(job_id)  # type: ignore[attr-defined]
    assert everything(store) == before
    assert store.insert([job("next")])


def test_a_refused_requeue_changes_nothing_even_for_the_ids_it_could_change(
    store: Store,
) -> None:
    [mine] = store.insert([job("mine")])
    [theirs] = store.insert([job("theirs", "other")])
    store.set_status(mine, "dead", "op")
    store.set_status(theirs, "dead", "op")
    before = everything(store)
    with pytest.raises(ItemNotFound):
        store.requeue([mine, theirs], True, "op", "q")
    assert everything(store) == before


def _expired(store: Store, clock) -> int:  # type: ignore[no-untyped-def]
    store.insert([job("held")])
    [row] = claim(store, lease=10)
    clock.advance(10)
    return row.id


def test_store_calls_made_inside_decide_belong_to_take_backs_transaction(
    backend: Backend, clock
) -> None:
    store = backend.open(Midway)
    held_id = _expired(store, clock)
    [dead] = store.insert([job("dead")])
    store.set_status(dead, "dead", "op")
    before = everything(store)

    def decide(held: list[Held]) -> list[Verdict]:
        assert store.requeue([dead], True, "op", None) == [dead]  # a plan of several statements
        store.register("w", "consumer", "q", "h", 1)  # one of a single statement
        assert store.row(dead).status == "ready"  # type: ignore[union-attr]
        assert store.stats(EVERY_MINUTE).counts[("q", "ready")] == 1  # reads see the changes so far
        raise RuntimeError("decide failed")

    with pytest.raises(RuntimeError, match="decide failed"):
        store.take_back([], decide, "m")
    assert everything(store) == before  # none of it stayed

    def decide_well(held: list[Held]) -> list[Verdict]:
        store.requeue([dead], True, "op", None)
        return [Verdict(h, "ready", "lease expired") for h in held]

    store.take_back([], decide_well, "m")
    assert (store.row(held_id).status, store.row(dead).status) == ("ready", "ready")  # type: ignore[union-attr]
    assert store.check() == []


def test_a_failing_call_inside_decide_is_undone_alone(backend: Backend, clock) -> None:
    store = backend.open(Midway)
    held_id = _expired(store, clock)
    [other] = store.insert([job("other")])
    refused: list[Exception] = []

    def decide(held: list[Held]) -> list[Verdict]:
        for call in (store.finish_then_raise, store.finish_then_bad_sql):  # type: ignore[attr-defined]
            try:
                call(other)
            except (RuntimeError, StoreError) as exc:
                refused.append(exc)
        return [Verdict(h, "ready", "lease expired") for h in held]

    [verdict] = store.take_back([], decide, "m")
    assert len(refused) == 2 and verdict.held.id == held_id
    assert store.row(other).status == "ready"  # type: ignore[union-attr]
    assert store.row(held_id).status == "ready"  # type: ignore[union-attr]
    assert [e.kind for e in store.events(None, 10, 0)] == ["requeue"]
    assert store.check() == []


# -- errors ------------------------------------------------------------------------------------


@contextmanager
def write_lock_held(backend: Backend) -> Iterator[None]:
    """Another session holds the store's write lock (SQLite) or locks the jobs table
    (PostgreSQL) until the block ends."""
    if isinstance(backend, PostgresBackend):
        conn = backend.connect()
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE pq_jobs IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    raw = sqlite3.connect(backend.target, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        raw.execute("ROLLBACK")
        raw.close()


def test_a_store_locked_past_the_busy_timeout_is_store_locked_and_nothing_is_half_done(
    backend: Backend,
) -> None:
    store = backend.open(busy_timeout=0.1)
    store.insert([job("before")])
    before = everything(store)
    with write_lock_held(backend):
        with pytest.raises(StoreLocked, match="locked"):
            store.insert([job("during")])
        with pytest.raises(StoreLocked):
            store.requeue([1], True, "op", None)
    assert everything(store) == before
    assert store.insert([job("after")])


def test_a_read_only_store_refuses_every_change_and_reads(backend: Backend, store: Store) -> None:
    [job_id] = store.insert([job("x")])
    reader = backend.open(read_only=True)
    for change in (
        lambda: reader.insert([job("y")]),
        lambda: reader.claim("q", 1, 60, "w", "t"),
        lambda: reader.complete([(job_id, "t")]),
        lambda: reader.requeue([job_id], True, "op", None),
        lambda: reader.set_paused("q", True, "op"),
        lambda: reader.register("w", "consumer", "q", "h", 1),
        lambda: reader.set_lease_cap(10),
    ):
        with pytest.raises(StoreReadOnly):
            change()
    assert reader.row(job_id).status == "ready"  # type: ignore[union-attr]
    assert reader.count(JobFilter()) == 1 and reader.stats(0).counts[("q", "ready")] == 1


def _backend_pid(store: Store) -> int:
    return store._connection().execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_backend_killed_during_a_call_is_connection_lost_and_the_next_call_reconnects(
    backend: PostgresBackend, store: Store, clock
) -> None:
    held_id = _expired(store, clock)

    def decide(held: list[Held]) -> list[Verdict]:
        assert backend.terminate() >= 1  # this call's own connection, mid-transaction
        return [Verdict(h, "ready", "lease expired") for h in held]

    with pytest.raises(ConnectionLost, match="connection"):
        store.take_back([], decide, "m")
    assert store.row(held_id).status == "in_progress"  # type: ignore[union-attr]
    [verdict] = store.take_back([], lambda hs: [Verdict(h, "ready", "x") for h in hs], "m")
    assert verdict.held.id == held_id and store.row(held_id).status == "ready"  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_idle_connection_the_server_ended_is_replaced_before_the_next_call(
    backend: PostgresBackend, store: Store
) -> None:
    for n in range(20):
        store.insert([job(str(n))])
        first = _backend_pid(store)
        assert backend.terminate() >= 1  # the store's connection (and the clock's)
        assert store.count(JobFilter()) == n + 1  # not ConnectionLost: it is replaced first
        assert _backend_pid(store) != first


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_value_postgresql_text_cannot_hold_is_invalid_value_and_keeps_the_connection(
    store: Store,
) -> None:
    store.insert([job("x")])
    [row] = claim(store)
    pid = _backend_pid(store)
    with pytest.raises(InvalidValue, match="NUL"):
        store.fail(row.id, row.token, "ready", 0, "nul \x00 inside", "e", "c")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="NUL"):
        store.requeue([row.id], True, "actor \x00", None)  # inside a transaction
    assert store.row(row.id).status == "in_progress"  # type: ignore[union-attr]
    assert _backend_pid(store) == pid
