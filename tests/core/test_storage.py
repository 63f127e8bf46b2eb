"""SQLite storage (SPEC 4): file mode, log, durability, the claim's index."""

from __future__ import annotations

import os
import sqlite3

import pq_core
from pq_core.store.sqlite import SQLiteStore

from .conftest import TracedStore


def test_a_new_store_is_readable_by_its_owner_only_and_uses_a_write_ahead_log(db: str) -> None:
    pq_core.open(db).close()
    assert os.stat(db).st_mode & 0o777 == 0o600
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_durability_is_full_by_default_and_normal_on_request(db: str) -> None:
    full, normal = 2, 1
    for options, expected in (({}, full), ({"durability": "normal"}, normal)):
        q = pq_core.open(db, **options)
        assert q.store._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
        q.close()


def test_every_write_takes_the_write_lock_up_front(db: str) -> None:
    store = TracedStore(db)
    q = pq_core.Queue(store)
    store.statements.clear()
    q.put("x")
    q.done(q.get())
    begins = [s for s in store.statements if s.upper().startswith("BEGIN")]
    assert begins and all(s.upper() == "BEGIN IMMEDIATE" for s in begins)
    q.close()


def test_a_claim_is_one_statement_on_the_ready_index_however_many_jobs_are_done(db: str) -> None:
    store = TracedStore(db, durability="normal")
    q = pq_core.Queue(store)
    q.put_many(range(20_000))
    while batch := q.get_many(1000):
        q.done_many(batch)
    q.put("the one ready job")
    store.statements.clear()
    assert q.get().payload == "the one ready job"
    # (a statement is traced again at each trigger it fires, hence the set)
    [claim] = {s for s in store.statements if s.startswith("UPDATE pq_jobs SET status = 'in_")}
    plain = sqlite3.connect(db)
    plan = " / ".join(row[-1] for row in plain.execute("EXPLAIN QUERY PLAN " + claim))
    plain.close()
    assert "jobs_claim" in plan, plan
    assert "SCAN pq_jobs" not in plan.replace("SCAN pq_jobs USING", ""), plan
    q.close()


def test_a_window_of_ids_in_one_queue_is_read_from_the_primary_key_not_the_whole_queue(
    db: str,
) -> None:
    store = TracedStore(db, durability="normal")
    q = pq_core.Queue(store, "big")
    q.put_many(f"report {n}" for n in range(5_000))
    store.statements.clear()
    found = q.items(search="report 4321", id_range=(4_000, 4_500), limit=10)
    assert [i.payload for i in found] == ["report 4321"]
    assert q.count(search="report 4321", id_range=(4_000, 4_500)) == 1
    reads = [s for s in store.statements if s.startswith("SELECT") and "BETWEEN" in s]
    assert len(reads) == 2, store.statements
    plain = sqlite3.connect(db)
    for read in reads:
        plan = " / ".join(row[-1] for row in plain.execute("EXPLAIN QUERY PLAN " + read))
        assert "PRIMARY KEY" in plan, plan  # the window's 501 ids, not the queue's 5,000
    plain.close()
    q.close()


def test_a_store_another_process_creates_while_this_one_opens_it_is_not_taken_for_a_foreign_file(
    db: str,
) -> None:
    class RacingStore(SQLiteStore):
        """Another process finishes creating the store just before this one's second statement."""

        seen = 0

        def _connect(self) -> sqlite3.Connection:
            conn = super()._connect()

            def trace(sql: str) -> None:
                if sql.startswith("--"):
                    return  # a part of the statement already running, not a new one
                RacingStore.seen += 1
                if RacingStore.seen == 2:
                    SQLiteStore(db).close()

            conn.set_trace_callback(trace)
            return conn

    q = pq_core.Queue(RacingStore(db))
    assert RacingStore.seen >= 2
    assert q.item(q.put("x")).payload == "x"
    q.close()
