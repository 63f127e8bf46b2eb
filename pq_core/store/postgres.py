"""The PostgreSQL backend: the same contract as the SQLite store, for many machines.

Claims use `FOR UPDATE SKIP LOCKED`, so consumers never wait on each other's rows; a put,
requeue or release sends `NOTIFY pq_jobs` (payload: the queue) so that a blocked
`get(timeout=…)` wakes at once. One connection per process and thread, in autocommit mode
with explicit transactions. The driver (psycopg 3) is imported only when this backend is used.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pq_core.errors import SchemaTooNew, StoreError, StoreReadOnly, from_postgres
from pq_core.store.base import COLUMNS, EventRow, Held, NewJob, Row, WorkerRow

SCHEMA_VERSION = 1
_COLS = ", ".join(COLUMNS)
_HELD_COLS = "id, queue, attempts, max_attempts, worker, claimed_at, lease_expires_at"
_CHANNEL = "pq_jobs"
_EVENT_JOB_IDS_KEPT = 1000
HISTORY_ONLY = "failed"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE pq_jobs (
        id               BIGSERIAL PRIMARY KEY,
        queue            TEXT    NOT NULL,
        payload          BYTEA   NOT NULL,
        encoding         TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        priority         INTEGER NOT NULL DEFAULT 0,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        created_at       DOUBLE PRECISION NOT NULL,
        updated_at       DOUBLE PRECISION NOT NULL,
        available_at     DOUBLE PRECISION NOT NULL,
        lease_expires_at DOUBLE PRECISION,
        worker           TEXT,
        last_error       TEXT,
        dedup_key        TEXT,
        token            TEXT,
        claimed_at       DOUBLE PRECISION
    );
    CREATE INDEX pq_jobs_claim ON pq_jobs (queue, priority DESC, available_at, id)
        WHERE status = 'ready';
    CREATE INDEX pq_jobs_lease ON pq_jobs (lease_expires_at, worker)
        WHERE status = 'in_progress';
    CREATE INDEX pq_jobs_listing ON pq_jobs (queue, status, id);
    CREATE INDEX pq_jobs_age ON pq_jobs (status, updated_at) WHERE status IN ('done', 'dead');
    CREATE UNIQUE INDEX pq_jobs_dedup ON pq_jobs (queue, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('ready', 'in_progress');
    CREATE TABLE pq_events (
        id      BIGSERIAL PRIMARY KEY,
        at      DOUBLE PRECISION NOT NULL,
        queue   TEXT    NOT NULL,
        kind    TEXT    NOT NULL,
        actor   TEXT    NOT NULL,
        count   INTEGER NOT NULL,
        detail  TEXT    NOT NULL,
        job_ids TEXT    NOT NULL
    );
    CREATE TABLE pq_job_events (
        job_id   BIGINT NOT NULL,
        event_id BIGINT NOT NULL,
        PRIMARY KEY (job_id, event_id)
    );
    CREATE TABLE pq_workers (
        id         TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        queue      TEXT    NOT NULL,
        host       TEXT    NOT NULL,
        pid        INTEGER NOT NULL,
        proc_start TEXT    NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        last_seen  DOUBLE PRECISION NOT NULL,
        stopped    BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (id, kind)
    );
    """,
]


class PostgresStore:
    """A pq store in a PostgreSQL database (tables named pq_*, in the connection's schema)."""

    def __init__(self, url: str, *, busy_timeout: float = 30.0, read_only: bool = False) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                "the PostgreSQL backend needs psycopg: pip install 'pq[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._url = url
        self.location = _redact(url)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._orphans: list[Any] = []
        self._migrate()

    # -- connections -------------------------------------------------------------------------

    @property
    def _conn(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid() or conn.closed:
            if conn is not None and local.pid != os.getpid():
                self._orphans.append(conn)  # the parent's socket: leave it alone
            try:
                conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
                ms = int(self.busy_timeout * 1000)
                conn.execute(f"SET lock_timeout = {ms}")
                if self.read_only:
                    conn.execute("SET default_transaction_read_only = on")
            except self._psycopg.Error as exc:
                raise from_postgres(exc, self.location) from None
            local.conn, local.pid, local.depth, local.listening = conn, os.getpid(), 0, False
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextmanager
    def _guard(self) -> Iterator[Any]:
        try:
            yield self._conn
        except self._psycopg.Error as exc:
            raise from_postgres(exc, self.location) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.read_only:
            raise StoreReadOnly(f"{self.location}: opened read-only; this change is refused")
        with self._guard() as conn:
            local = self._local
            if local.depth:
                local.depth += 1
                try:
                    yield
                finally:
                    local.depth -= 1
                return
            local.depth = 1
            try:
                with conn.transaction():
                    yield
            finally:
                local.depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._guard() as conn:
            if self._local.depth:
                yield
                return
            self._local.depth = 1
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield
            finally:
                self._local.depth = 0

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._guard() as conn:
            return conn.execute(sql, args).fetchall()

    # -- schema ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._guard() as conn:
            exists = conn.execute("SELECT to_regclass('pq_meta') IS NOT NULL").fetchone()[0]
            version = 0
            if exists:
                version = int(
                    conn.execute("SELECT value FROM pq_meta WHERE key = 'version'").fetchone()[0]
                )
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.location}: store format version {version} is newer than this pq "
                f"understands (up to {SCHEMA_VERSION}); upgrade pq to open it"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreReadOnly(f"{self.location}: store needs creating or upgrading first")
        with self.transaction(), self._guard() as conn:
            # One migrator at a time; the others find the work done.
            conn.execute("SELECT pg_advisory_xact_lock(7073)")
            conn.execute("CREATE TABLE IF NOT EXISTS pq_meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM pq_meta WHERE key = 'version'").fetchone()
            version = int(row[0]) if row else 0
            for step in MIGRATIONS[version:]:
                conn.execute(step)
            conn.execute(
                "INSERT INTO pq_meta (key, value) VALUES ('version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _notify(self, conn: Any, queues: Sequence[str]) -> None:
        for queue in sorted(set(queues)):
            conn.execute("SELECT pg_notify(%s, %s)", (_CHANNEL, queue))

    # -- producer ----------------------------------------------------------------------------

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        sql = (
            "INSERT INTO pq_jobs (queue, payload, encoding, status, priority, max_attempts,"
            " available_at, dedup_key, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'ready', %s, %s, %s, %s, %s, %s)"
        )
        ids = []
        with self.transaction(), self._guard() as conn:
            cur = conn.cursor()
            if all(job.dedup_key is None for job in jobs):
                cur.executemany(
                    sql + " RETURNING id",
                    [(*_bytes_job(job), now, now) for job in jobs],
                    returning=True,
                )
                while True:
                    ids.append(cur.fetchone()[0])
                    if not cur.nextset():
                        break
            else:
                for job in jobs:
                    row = cur.execute(
                        sql + " ON CONFLICT DO NOTHING RETURNING id", (*_bytes_job(job), now, now)
                    ).fetchone()
                    if row is None:
                        row = cur.execute(
                            "SELECT id FROM pq_jobs WHERE queue = %s AND dedup_key = %s"
                            " AND status IN ('ready', 'in_progress')",
                            (job.queue, job.dedup_key),
                        ).fetchone()
                    ids.append(row[0])
            self._notify(conn, [job.queue for job in jobs])
        return ids

    # -- consumer ----------------------------------------------------------------------------

    def claim(
        self,
        queue: str,
        limit: int,
        now: float,
        lease_until: float,
        worker: str,
        token: str,
        ack: Sequence[tuple[int, str]] = (),
    ) -> list[Row]:
        with self.transaction(), self._guard() as conn:
            if ack:
                self._complete(conn, ack, now)
            rows = conn.execute(
                f"UPDATE pq_jobs SET status = 'in_progress', attempts = attempts + 1,"
                f" token = %s, worker = %s, lease_expires_at = %s, updated_at = %s,"
                f" claimed_at = %s"
                f" WHERE id IN (SELECT id FROM pq_jobs"
                f"   WHERE queue = %s AND status = 'ready' AND available_at <= %s"
                f"   ORDER BY priority DESC, available_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_COLS}",
                (token, worker, lease_until, now, now, queue, now, limit),
            ).fetchall()
        rows = [_text_row(r) for r in rows]
        rows.sort(key=lambda r: (-r[5], r[10], r[0]))
        return rows

    def complete(self, claims: Sequence[tuple[int, str]], now: float) -> list[str]:
        with self.transaction(), self._guard() as conn:
            return self._complete(conn, claims, now)

    @staticmethod
    def _complete(conn: Any, claims: Sequence[tuple[int, str]], now: float) -> list[str]:
        outcomes = []
        for job_id, token in claims:
            cur = conn.execute(
                "UPDATE pq_jobs SET status = 'done', updated_at = %s, lease_expires_at = NULL"
                " WHERE id = %s AND ((status = 'in_progress' AND token = %s)"
                "   OR status IN ('ready', 'dead'))",
                (now, job_id, token),
            )
            outcomes.append("done" if cur.rowcount else _why_not(conn, job_id))
        return outcomes

    def fail(
        self,
        job_id: int,
        token: str,
        now: float,
        status: str,
        available_at: float,
        error: str | None,
    ) -> str:
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                "UPDATE pq_jobs SET status = %s, available_at = %s, last_error = %s,"
                " updated_at = %s, lease_expires_at = NULL, token = NULL"
                " WHERE id = %s AND status = 'in_progress' AND token = %s RETURNING queue",
                (status, available_at, error, now, job_id, token),
            )
            row = cur.fetchone()
            if row is None:
                return _why_not(conn, job_id)
            if status == "ready":
                self._notify(conn, [row[0]])
            return "done"

    def extend(self, job_id: int, token: str, lease_until: float, now: float) -> bool:
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                "UPDATE pq_jobs SET lease_expires_at = %s, updated_at = %s"
                " WHERE id = %s AND status = 'in_progress' AND token = %s",
                (lease_until, now, job_id, token),
            )
            return cur.rowcount == 1

    def release(self, job_id: int, token: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            row = conn.execute(
                "UPDATE pq_jobs SET status = 'ready', available_at = %s, updated_at = %s,"
                " lease_expires_at = NULL, token = NULL"
                " WHERE id = %s AND status = 'in_progress' AND token = %s RETURNING queue",
                (now, now, job_id, token),
            ).fetchone()
            if row:
                self._notify(conn, [row[0]])

    # -- manager -----------------------------------------------------------------------------

    def held(self, now: float, stale_before: float | None) -> list[Held]:
        # Inside a transaction the rows stay locked, so a second manager skips them.
        lock = " FOR UPDATE SKIP LOCKED" if self._local_depth() else ""
        if stale_before is None:
            rows = self._rows(
                f"SELECT {_HELD_COLS} FROM pq_jobs"
                f" WHERE status = 'in_progress' AND lease_expires_at <= %s{lock}",
                (now,),
            )
        else:
            rows = self._rows(
                f"SELECT {_HELD_COLS} FROM pq_jobs WHERE status = 'in_progress'"
                f" AND (lease_expires_at <= %s OR updated_at <= %s){lock}",
                (now, stale_before),
            )
        return [Held(*r) for r in rows]

    def _local_depth(self) -> int:
        return getattr(self._local, "depth", 0)

    def holders(self) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT worker FROM pq_jobs"
            " WHERE status = 'in_progress' AND worker IS NOT NULL"
        )
        return [r[0] for r in rows]

    def held_by(self, workers: Sequence[str]) -> list[Held]:
        lock = " FOR UPDATE SKIP LOCKED" if self._local_depth() else ""
        rows = self._rows(
            f"SELECT {_HELD_COLS} FROM pq_jobs"
            f" WHERE status = 'in_progress' AND worker = ANY(%s){lock}",
            (list(workers),),
        )
        return [Held(*r) for r in rows]

    def all_held(self) -> list[Held]:
        rows = self._rows(f"SELECT {_HELD_COLS} FROM pq_jobs WHERE status = 'in_progress'")
        return [Held(*r) for r in rows]

    def settle(self, ready: Sequence[int], dead: Sequence[int], now: float, error: str) -> None:
        with self.transaction(), self._guard() as conn:
            for status, ids in (("ready", ready), ("dead", dead)):
                if not ids:
                    continue
                queues = conn.execute(
                    "UPDATE pq_jobs SET status = %s, available_at = %s, updated_at = %s,"
                    " last_error = %s, lease_expires_at = NULL, token = NULL"
                    " WHERE id = ANY(%s) AND status = 'in_progress' RETURNING queue",
                    (status, now, now, error, list(ids)),
                ).fetchall()
                if status == "ready":
                    self._notify(conn, [q for (q,) in queues])

    # -- operator ----------------------------------------------------------------------------

    def requeue(self, ids: Sequence[int], now: float, reset_attempts: bool) -> list[int]:
        changed = []
        sql = (
            "UPDATE pq_jobs SET status = 'ready', available_at = %s, updated_at = %s,"
            " attempts = CASE WHEN %s THEN 0 ELSE attempts END,"
            " lease_expires_at = NULL, token = NULL"
            " WHERE id = %s AND status <> 'ready' RETURNING queue"
        )
        with self.transaction(), self._guard() as conn:
            queues = []
            for job_id in ids:
                row = self._revive(conn, sql, (now, now, reset_attempts, job_id), job_id)
                if row:
                    changed.append(job_id)
                    queues.append(row[0])
            self._notify(conn, queues)
        return changed

    def _revive(self, conn: Any, sql: str, args: tuple, job_id: int) -> tuple | None:
        """Run an UPDATE … RETURNING that makes a job live again. If its dedup_key went to a
        newer live job meanwhile, that job keeps the key and this one is revived without it."""
        try:
            with conn.transaction():  # a savepoint: a conflict spoils only this statement
                return conn.execute(sql, args).fetchone()
        except self._psycopg.errors.UniqueViolation:
            conn.execute("UPDATE pq_jobs SET dedup_key = NULL WHERE id = %s", (job_id,))
            return conn.execute(sql, args).fetchone()

    def delete(self, ids: Sequence[int]) -> list[int]:
        with self.transaction(), self._guard() as conn:
            rows = conn.execute(
                "DELETE FROM pq_jobs WHERE id = ANY(%s) RETURNING id", (list(ids),)
            ).fetchall()
            removed = {r[0] for r in rows}
            conn.execute("DELETE FROM pq_job_events WHERE job_id = ANY(%s)", (list(removed),))
        return [i for i in ids if i in removed]

    def purge(self, queue: str | None, status: str, before: float, dry_run: bool) -> int:
        where = "status = %s AND updated_at <= %s" + ("" if queue is None else " AND queue = %s")
        if status in ("done", "dead"):
            where += " AND status IN ('done', 'dead')"  # lets the planner use pq_jobs_age
        args = (status, before) if queue is None else (status, before, queue)
        if dry_run:
            return self._rows(f"SELECT count(*) FROM pq_jobs WHERE {where}", args)[0][0]
        with self.transaction(), self._guard() as conn:
            return conn.execute(
                f"WITH gone AS (DELETE FROM pq_jobs WHERE {where} RETURNING id),"
                " history AS (DELETE FROM pq_job_events WHERE job_id IN (SELECT id FROM gone))"
                " SELECT count(*) FROM gone",
                args,
            ).fetchone()[0]

    def set_status(self, job_id: int, status: str, now: float) -> bool:
        # As in the SQLite store: a job forced into progress is held by no claim, so its lease
        # ends now; one already in progress keeps its claim.
        sql = (
            "UPDATE pq_jobs SET status = %s, updated_at = %s, available_at = %s,"
            " lease_expires_at = CASE WHEN %s <> 'in_progress' THEN NULL"
            "   WHEN status = 'in_progress' THEN lease_expires_at ELSE %s END,"
            " claimed_at = CASE WHEN %s = 'in_progress' AND status <> 'in_progress' THEN %s"
            "   ELSE claimed_at END,"
            " token = CASE WHEN %s = 'in_progress' THEN token END"
            " WHERE id = %s RETURNING queue"
        )
        args = (status, now, now, status, now, status, now, status, job_id)
        with self.transaction(), self._guard() as conn:
            row = self._revive(conn, sql, args, job_id)
            if row and status == "ready":
                self._notify(conn, [row[0]])
            return row is not None

    # -- events ------------------------------------------------------------------------------

    def record(
        self,
        now: float,
        queue: str,
        kind: str,
        actor: str,
        detail: str,
        job_ids: Sequence[int],
        count: int | None = None,
    ) -> None:
        listed = "[" + ",".join(str(i) for i in job_ids[:_EVENT_JOB_IDS_KEPT]) + "]"
        with self.transaction(), self._guard() as conn:
            event_id = conn.execute(
                "INSERT INTO pq_events (at, queue, kind, actor, count, detail, job_ids)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (now, queue, kind, actor, len(job_ids) if count is None else count, detail, listed),
            ).fetchone()[0]
            if job_ids:
                conn.execute(
                    "INSERT INTO pq_job_events (job_id, event_id)"
                    " SELECT unnest(%s::bigint[]), %s ON CONFLICT DO NOTHING",
                    (list(job_ids), event_id),
                )

    def events(self, queue: str | None, limit: int, offset: int) -> list[EventRow]:
        where = "kind <> %s" + ("" if queue is None else " AND queue = %s")
        args: tuple = (HISTORY_ONLY,) if queue is None else (HISTORY_ONLY, queue)
        rows = self._rows(
            f"SELECT * FROM pq_events WHERE {where} ORDER BY id DESC LIMIT %s OFFSET %s",
            (*args, limit, offset),
        )
        return [EventRow(*r) for r in rows]

    def history(self, job_id: int) -> list[EventRow]:
        rows = self._rows(
            "SELECT e.* FROM pq_job_events j JOIN pq_events e ON e.id = j.event_id"
            " WHERE j.job_id = %s ORDER BY e.id",
            (job_id,),
        )
        return [EventRow(*r) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    def counts(self) -> dict[tuple[str, str], int]:
        # An index-only count: PostgreSQL keeps no cheap row count, and a counter row would
        # make every writer on every machine wait for each other.
        rows = self._rows("SELECT queue, status, count(*) FROM pq_jobs GROUP BY queue, status")
        return {(q, s): n for q, s, n in rows}

    def oldest_ready(self, queue: str) -> float | None:
        rows = self._rows(
            "SELECT created_at FROM pq_jobs WHERE queue = %s AND status = 'ready'"
            " ORDER BY id LIMIT 1",
            (queue,),
        )
        return rows[0][0] if rows else None

    def done_per_minute(self, queue: str, since_minute: int) -> dict[int, int]:
        rows = self._rows(
            "SELECT floor(updated_at / 60)::bigint AS minute, count(*) FROM pq_jobs"
            " WHERE status = 'done' AND updated_at >= %s AND queue = %s GROUP BY minute",
            (since_minute * 60, queue),
        )
        return {int(m): n for m, n in rows}

    def rows(
        self,
        queue: str | None,
        statuses: Sequence[str] | None,
        search: str | None,
        limit: int,
        offset: int,
        newest_first: bool,
    ) -> list[Row]:
        where, args = [], []
        if queue is not None:
            where.append("queue = %s")
            args.append(queue)
        if statuses:
            where.append("status = ANY(%s)")
            args.append(list(statuses))
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern += "%"
            where.append(
                "(convert_from(payload, 'UTF8') ILIKE %s OR last_error ILIKE %s"
                " OR worker ILIKE %s OR id::text = %s)"
            )
            args.extend([pattern, pattern, pattern, search.strip()])
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = self._rows(
            f"SELECT {_COLS} FROM pq_jobs {clause} ORDER BY id {order} LIMIT %s OFFSET %s",
            (*args, limit, offset),
        )
        return [_text_row(r) for r in rows]

    def row(self, job_id: int) -> Row | None:
        rows = self._rows(f"SELECT {_COLS} FROM pq_jobs WHERE id = %s", (job_id,))
        return _text_row(rows[0]) if rows else None

    # -- workers -----------------------------------------------------------------------------

    def register(self, worker: WorkerRow) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "INSERT INTO pq_workers (id, kind, queue, host, pid, proc_start, started_at,"
                " last_seen, stopped) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id, kind) DO UPDATE SET last_seen = excluded.last_seen,"
                " queue = excluded.queue, stopped = FALSE",
                worker,
            )

    def heartbeat_worker(self, worker_id: str, kind: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "UPDATE pq_workers SET last_seen = %s WHERE id = %s AND kind = %s",
                (now, worker_id, kind),
            )

    def stop_worker(self, worker_id: str, kind: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "UPDATE pq_workers SET stopped = TRUE, last_seen = %s WHERE id = %s AND kind = %s",
                (now, worker_id, kind),
            )

    def workers(self) -> list[WorkerRow]:
        rows = self._rows(
            "SELECT id, kind, queue, host, pid, proc_start, started_at, last_seen, stopped"
            " FROM pq_workers ORDER BY last_seen DESC"
        )
        return [WorkerRow(*r) for r in rows]

    def forget_workers(self, before: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute("DELETE FROM pq_workers WHERE last_seen < %s", (before,))

    # -- housekeeping ------------------------------------------------------------------------

    def maintain(self, now: float) -> bool:
        return False  # PostgreSQL's own autovacuum and checkpoints keep it bounded

    def wait(self, queue: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._guard() as conn:
            if not self._local.listening:
                conn.execute(f"LISTEN {_CHANNEL}")
                self._local.listening = True
            while (left := deadline - time.monotonic()) > 0:
                for note in conn.notifies(timeout=left, stop_after=1):
                    if note.payload == queue:
                        return


def _bytes_job(job: NewJob) -> tuple:
    payload = job.payload
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    return (job.queue, payload, *job[2:])


def _text_row(row: tuple) -> tuple:
    """Payloads are stored as bytes; give str and JSON payloads back as text, as SQLite does."""
    payload = row[2]
    if row[3] != "bytes":
        payload = bytes(payload).decode("utf-8", "surrogatepass")
    else:
        payload = bytes(payload)
    return (*row[:2], payload, *row[3:])


def _why_not(conn: Any, job_id: int) -> str:
    row = conn.execute("SELECT status FROM pq_jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        return "missing"
    return "lost" if row[0] == "in_progress" else "already"


def _redact(url: str) -> str:
    """A URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, cred = head.partition("//")
    user = cred.split(":", 1)[0]
    return f"{scheme}//{user}{':***' if ':' in cred else ''}@{tail}"
