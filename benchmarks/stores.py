"""Large stores built fast: the system creates its own schema, then one `executemany` in a single
transaction fills it with rows shaped as the system itself writes them. Built once per run as a
template; every round measures a fresh copy of it, through the system's own API."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import time
from collections.abc import Iterator

from benchmarks.systems import open_system, payload

ELSEWHERE = "bench-host-elsewhere:1:1"  # a worker on another host: only its lease expiring counts


def _bulk(path: str, sql: str, rows: Iterator[tuple]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # building, not measuring
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


_PQ_INSERT = (
    "INSERT INTO pq_jobs (queue, payload, encoding, status, priority, attempts, max_attempts,"
    " created_at, updated_at, available_at, lease_expires_at, worker, last_error, token)"
    " VALUES ('default', ?, 'str', ?, 0, ?, 3, ?, ?, ?, ?, ?, ?, ?)"
)
# pq counts the jobs of each status per statement (its put does); a bulk insert recounts.
_PQ_RECOUNT = (
    "INSERT INTO pq_counters (queue, kind, minute, shard, n)"
    " SELECT queue, status, 0, 0, count(*) FROM pq_jobs WHERE true GROUP BY queue, status"
    " ON CONFLICT (queue, kind, minute, shard) DO UPDATE SET n = excluded.n"
)


def _pq_bulk(path: str, rows: Iterator[tuple]) -> None:
    _bulk(path, _PQ_INSERT, rows)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(_PQ_RECOUNT)
    conn.close()


def pq_history(folder: str, done: int, dead: int) -> None:
    """`done` done jobs and `dead` dead ones, a day old, in pq's schema, counted."""
    system = open_system("pq", folder, "normal")
    path = system.path
    system.close()
    start = time.time() - 86_400

    def rows() -> Iterator[tuple]:
        for i in range(done + dead):
            at = start + i * 0.01
            if i < done:
                yield (payload(i), "done", 1, at, at + 1, at, None, None, None, None)
            else:
                yield (payload(i), "dead", 3, at, at + 1, at, None, None, "boom", None)

    _pq_bulk(path, rows())


def pq_expired(folder: str, n: int) -> None:
    """`n` jobs in progress whose leases ran out an hour ago, held by a worker on another host."""
    system = open_system("pq", folder, "normal")
    path = system.path
    system.close()
    now = time.time()

    def rows() -> Iterator[tuple]:
        for i in range(n):
            at = now - 7200 + i * 0.01
            token = f"{i:016x}"
            yield (payload(i), "in_progress", 1, at, at, at, now - 3600, ELSEWHERE, None, token)

    _pq_bulk(path, rows())


def raw_history(folder: str, done: int) -> None:
    system = open_system("raw", folder, "normal")
    path = system.path
    system.close()
    rows = ((payload(i), 2) for i in range(done))
    _bulk(path, "INSERT INTO jobs (payload, status) VALUES (?, ?)", rows)


def litequeue_history(folder: str, done: int) -> None:
    system = open_system("litequeue", folder, "normal")
    path = system.path
    system.close()
    t0 = time.time_ns() - 86_400 * 10**9
    # message ids sort before any uuid7 made now, as older messages' would.
    rows = (
        (payload(i), f"00000000-0000-7000-8000-{i:012x}", 2, t0 + i, t0 + i, t0 + i)
        for i in range(done)
    )
    _bulk(
        path,
        "INSERT INTO [bench] (data, message_id, status, in_time, lock_time, done_time)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def persist_queue_history(folder: str, done: int) -> None:
    system = open_system("persist-queue", folder, "normal")
    path = os.path.join(system.path, "data.db")
    system.close()
    t0 = time.time() - 86_400
    rows = ((pickle.dumps(payload(i), protocol=4), t0 + i * 0.01, 5) for i in range(done))
    _bulk(path, "INSERT INTO `ack_queue_default` (data, timestamp, status) VALUES (?, ?, ?)", rows)


HISTORY_BUILDERS = {
    "raw": raw_history,
    "litequeue": litequeue_history,
    "persist-queue": persist_queue_history,
}


def copy_store(template: str, folder: str) -> None:
    """A fresh store for one round: a copy of the template's folder (its log is empty)."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    shutil.copytree(template, folder)
