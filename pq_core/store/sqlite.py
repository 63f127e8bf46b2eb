"""The SQLite backend: schema, pragmas, the claim statement and migrations.

One connection per process and thread, never carried across fork. Every write is
`BEGIN IMMEDIATE … COMMIT`, so a writer waits for the lock up front instead of failing midway.
Counters (per queue and status, done per minute) are kept by triggers in the same transaction
as the change, so `stats()` never scans the jobs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pq_core.errors import (
    NotAStore,
    SchemaTooNew,
    StoreNotFound,
    StoreReadOnly,
    from_sqlite,
)
from pq_core.store.base import COLUMNS, EventRow, Held, NewJob, Row, WorkerRow

APPLICATION_ID = 0x70710A01  # "pq" + format family; tells a pq store from any other SQLite file
SCHEMA_VERSION = 1
PAGE_SIZE = 1024

_COLS = ", ".join(COLUMNS)
_HELD_COLS = "id, queue, attempts, max_attempts, worker, claimed_at, lease_expires_at"

# Each entry migrates from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        queue            TEXT    NOT NULL,
        payload          BLOB    NOT NULL,
        encoding         TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        priority         INTEGER NOT NULL DEFAULT 0,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        created_at       REAL    NOT NULL,
        updated_at       REAL    NOT NULL,
        available_at     REAL    NOT NULL,
        lease_expires_at REAL,
        worker           TEXT,
        last_error       TEXT,
        dedup_key        TEXT,
        token            TEXT,
        claimed_at       REAL
    );
    -- claim: only ready jobs are in it, so done jobs piling up never slow a claim
    CREATE INDEX jobs_claim ON jobs (queue, priority DESC, available_at, id)
        WHERE status = 'ready';
    CREATE INDEX jobs_lease ON jobs (lease_expires_at, worker) WHERE status = 'in_progress';
    CREATE INDEX jobs_listing ON jobs (queue, status, id);
    -- purge: only finished jobs, so a claim does not touch it
    CREATE INDEX jobs_age ON jobs (status, updated_at) WHERE status IN ('done', 'dead');
    CREATE UNIQUE INDEX jobs_dedup ON jobs (queue, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('ready', 'in_progress');

    CREATE TABLE counts (
        queue  TEXT NOT NULL,
        status TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (queue, status)
    ) WITHOUT ROWID;
    CREATE TABLE throughput (
        queue  TEXT    NOT NULL,
        minute INTEGER NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (queue, minute)
    ) WITHOUT ROWID;

    CREATE TRIGGER jobs_counted_in AFTER INSERT ON jobs BEGIN
        INSERT INTO counts (queue, status, n) VALUES (NEW.queue, NEW.status, 1)
            ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_counted_move AFTER UPDATE OF status ON jobs
        WHEN OLD.status <> NEW.status BEGIN
        UPDATE counts SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status;
        INSERT INTO counts (queue, status, n) VALUES (NEW.queue, NEW.status, 1)
            ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_counted_done AFTER UPDATE OF status ON jobs
        WHEN NEW.status = 'done' AND OLD.status <> 'done' BEGIN
        INSERT INTO throughput (queue, minute, n)
            VALUES (NEW.queue, CAST(NEW.updated_at / 60 AS INTEGER), 1)
            ON CONFLICT (queue, minute) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_counted_out AFTER DELETE ON jobs BEGIN
        UPDATE counts SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status;
        DELETE FROM job_events WHERE job_id = OLD.id;
    END;

    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      REAL    NOT NULL,
        queue   TEXT    NOT NULL,
        kind    TEXT    NOT NULL,
        actor   TEXT    NOT NULL,
        count   INTEGER NOT NULL,
        detail  TEXT    NOT NULL,
        job_ids TEXT    NOT NULL
    );
    CREATE TABLE job_events (
        job_id   INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        PRIMARY KEY (job_id, event_id)
    ) WITHOUT ROWID;

    CREATE TABLE workers (
        id         TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        queue      TEXT    NOT NULL,
        host       TEXT    NOT NULL,
        pid        INTEGER NOT NULL,
        proc_start TEXT    NOT NULL,
        started_at REAL    NOT NULL,
        last_seen  REAL    NOT NULL,
        stopped    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (id, kind)
    ) WITHOUT ROWID;
    """,
]

# Events of this kind belong to a job's history only, not to the activity log.
HISTORY_ONLY = "failed"
_EVENT_JOB_IDS_KEPT = 1000  # how many ids an event row lists; the job_events table has all


class SQLiteStore:
    """A pq store in one SQLite file. Thread-safe: each thread gets its own connection."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "full",
        busy_timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        self.location = os.path.abspath(os.fspath(path))
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._synchronous = {"full": "FULL", "normal": "NORMAL"}[durability]
        self._local = threading.local()
        self._orphans: list[sqlite3.Connection] = []  # inherited across fork: never touched
        self._prepare_file()
        self._migrate()

    # -- connections -------------------------------------------------------------------------

    def _prepare_file(self) -> None:
        path = self.location
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise StoreNotFound(f"{path}: folder {folder} does not exist")
        if os.path.isdir(path):
            raise NotAStore(f"{path}: is a folder, not a pq store")
        if self.read_only:
            if not os.path.exists(path):
                raise StoreNotFound(f"{path}: no such store")
            return
        try:
            # Created here, not by SQLite, so that only the owner can read the jobs.
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            if not os.access(path, os.W_OK):
                raise StoreReadOnly(
                    f"{path}: store is read-only for this user; "
                    "open it with read_only=True to inspect it"
                ) from None
        except PermissionError as exc:
            raise StoreReadOnly(f"{path}: cannot create the store here ({exc.strerror})") from None

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = self._connect_read_only()
        else:
            conn = sqlite3.connect(self.location, timeout=self.busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -16000")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(self.location) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            unreadable = exc.sqlite_errorname not in (
                "SQLITE_READONLY_DIRECTORY",
                "SQLITE_CANTOPEN",
            )
            if unreadable or os.path.exists(self.location + "-wal"):
                raise
        conn.close()
        # A reader of a WAL store needs its shared-memory file, which cannot be made in a folder
        # we may not write. With no log beside it, the file alone is the whole store: read it
        # as it is (SQLite's documented way to open such a store read-only).
        return sqlite3.connect(
            uri + "&immutable=1", uri=True, timeout=self.busy_timeout, isolation_level=None
        )

    @property
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != pid:
            if conn is not None:
                self._orphans.append(conn)  # the parent's: closing it here could hurt the parent
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise from_sqlite(exc, self.location) from None
            local.conn, local.pid, local.depth = conn, pid, 0
            local.version = None
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise from_sqlite(exc, self.location) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.read_only:
            raise StoreReadOnly(f"{self.location}: opened read-only; this change is refused")
        conn = self._conn
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise from_sqlite(exc, self.location) from None
        local.depth = 1
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite may already have rolled back (e.g. on a full disk)
            if isinstance(exc, sqlite3.Error):
                raise from_sqlite(exc, self.location) from None
            raise
        finally:
            local.depth = 0

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one consistent state."""
        with self._guard() as conn:
            if self._local.depth:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # -- schema ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        path = self.location
        with self._guard() as conn:
            # One statement, one snapshot: a store another process is creating at this moment
            # is seen before or after, never half-made (which would look like a foreign file).
            app_id, version, tables = conn.execute(
                "SELECT (SELECT application_id FROM pragma_application_id),"
                " (SELECT user_version FROM pragma_user_version),"
                " (SELECT count(*) FROM sqlite_master)"
            ).fetchone()
        if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
            raise NotAStore(f"{path}: a SQLite database, but not a pq store")
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path}: store format version {version} is newer than this pq understands "
                f"(up to {SCHEMA_VERSION}); upgrade pq to open it"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreReadOnly(
                f"{path}: store needs upgrading from format {version} to {SCHEMA_VERSION}; "
                "open it once for writing"
            )
        with self._guard() as conn:
            if tables == 0:
                # Small pages: a claim or an ack touches ~6 pages (row, indexes, counters), and
                # each is written whole to the log; 1 KiB pages make every commit ~30% cheaper.
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise NotAStore(f"{path}: cannot use write-ahead logging on this file")
        with self.transaction(), self._guard() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another may have won
            for step in MIGRATIONS[version:]:
                for statement in _statements(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- producer ----------------------------------------------------------------------------

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        plain = all(job.dedup_key is None for job in jobs)
        with self.transaction(), self._guard() as conn:
            sql = (
                "INSERT INTO jobs (queue, payload, encoding, status, priority, max_attempts,"
                " available_at, dedup_key, created_at, updated_at)"
                " VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?, ?)"
            )
            if plain and len(jobs) == 1:
                return [conn.execute(sql, (*jobs[0], now, now)).lastrowid]
            if plain:
                conn.executemany(sql, [(*job, now, now) for job in jobs])
                # AUTOINCREMENT under the write lock hands out consecutive ids.
                last = _last_id(conn)
                return list(range(last - len(jobs) + 1, last + 1))
            ids = []
            for job in jobs:
                row = conn.execute(
                    sql + " ON CONFLICT DO NOTHING RETURNING id",
                    (*job, now, now),
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "SELECT id FROM jobs WHERE queue = ? AND dedup_key = ?"
                        " AND status IN ('ready', 'in_progress')",
                        (job.queue, job.dedup_key),
                    ).fetchone()
                ids.append(row[0])
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
                f"UPDATE jobs SET status = 'in_progress', attempts = attempts + 1,"
                f" token = ?, worker = ?, lease_expires_at = ?, updated_at = ?, claimed_at = ?"
                f" WHERE id IN (SELECT id FROM jobs"
                f"   WHERE queue = ? AND status = 'ready' AND available_at <= ?"
                f"   ORDER BY priority DESC, available_at, id LIMIT ?)"
                f" RETURNING {_COLS}",
                (token, worker, lease_until, now, now, queue, now, limit),
            ).fetchall()
        if len(rows) > 1:
            rows.sort(key=lambda r: (-r[5], r[10], r[0]))
        return rows

    def complete(self, claims: Sequence[tuple[int, str]], now: float) -> list[str]:
        with self.transaction(), self._guard() as conn:
            return self._complete(conn, claims, now)

    @staticmethod
    def _complete(
        conn: sqlite3.Connection, claims: Sequence[tuple[int, str]], now: float
    ) -> list[str]:
        outcomes = []
        for job_id, token in claims:
            cur = conn.execute(
                "UPDATE jobs SET status = 'done', updated_at = ?, lease_expires_at = NULL"
                " WHERE id = ? AND ((status = 'in_progress' AND token = ?)"
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
                "UPDATE jobs SET status = ?, available_at = ?, last_error = ?, updated_at = ?,"
                " lease_expires_at = NULL, token = NULL"
                " WHERE id = ? AND status = 'in_progress' AND token = ?",
                (status, available_at, error, now, job_id, token),
            )
            return "done" if cur.rowcount else _why_not(conn, job_id)

    def extend(self, job_id: int, token: str, lease_until: float, now: float) -> bool:
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_expires_at = ?, updated_at = ?"
                " WHERE id = ? AND status = 'in_progress' AND token = ?",
                (lease_until, now, job_id, token),
            )
            return cur.rowcount == 1

    def release(self, job_id: int, token: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'ready', available_at = ?, updated_at = ?,"
                " lease_expires_at = NULL, token = NULL"
                " WHERE id = ? AND status = 'in_progress' AND token = ?",
                (now, now, job_id, token),
            )

    # -- manager -----------------------------------------------------------------------------

    def held(self, now: float, stale_before: float | None) -> list[Held]:
        with self._guard() as conn:
            if stale_before is None:
                rows = conn.execute(
                    f"SELECT {_HELD_COLS} FROM jobs"
                    " WHERE status = 'in_progress' AND lease_expires_at <= ?",
                    (now,),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_HELD_COLS} FROM jobs WHERE status = 'in_progress'"
                    " AND (lease_expires_at <= ? OR updated_at <= ?)",
                    (now, stale_before),
                ).fetchall()
        return [Held(*r) for r in rows]

    def holders(self) -> list[str]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT DISTINCT worker FROM jobs INDEXED BY jobs_lease"
                " WHERE status = 'in_progress' AND worker IS NOT NULL"
            ).fetchall()
        return [r[0] for r in rows]

    def held_by(self, workers: Sequence[str]) -> list[Held]:
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT {_HELD_COLS} FROM jobs INDEXED BY jobs_lease"
                " WHERE status = 'in_progress' AND worker IN (SELECT value FROM json_each(?))",
                (json.dumps(list(workers)),),
            ).fetchall()
        return [Held(*r) for r in rows]

    def all_held(self) -> list[Held]:
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT {_HELD_COLS} FROM jobs INDEXED BY jobs_lease WHERE status = 'in_progress'"
            ).fetchall()
        return [Held(*r) for r in rows]

    def settle(self, ready: Sequence[int], dead: Sequence[int], now: float, error: str) -> None:
        with self.transaction(), self._guard() as conn:
            for status, ids in (("ready", ready), ("dead", dead)):
                if not ids:
                    continue
                # One statement over a JSON list of ids: ~4× faster than one UPDATE per id
                # (100,000 expired leases: 0.5 s instead of 2 s), with the same rows and triggers.
                conn.execute(
                    "UPDATE jobs SET status = ?, available_at = ?, updated_at = ?,"
                    " last_error = ?, lease_expires_at = NULL, token = NULL"
                    " WHERE id IN (SELECT value FROM json_each(?)) AND status = 'in_progress'",
                    (status, now, now, error, json.dumps(list(ids))),
                )

    # -- operator ----------------------------------------------------------------------------

    def requeue(self, ids: Sequence[int], now: float, reset_attempts: bool) -> list[int]:
        changed = []
        sql = (
            "UPDATE jobs SET status = 'ready', available_at = ?, updated_at = ?,"
            " attempts = CASE WHEN ? THEN 0 ELSE attempts END,"
            " lease_expires_at = NULL, token = NULL"
            " WHERE id = ? AND status <> 'ready'"
        )
        with self.transaction(), self._guard() as conn:
            for job_id in ids:
                cur = _revive(conn, sql, (now, now, reset_attempts, job_id), job_id)
                if cur.rowcount:
                    changed.append(job_id)
        return changed

    def delete(self, ids: Sequence[int]) -> list[int]:
        removed = []
        with self.transaction(), self._guard() as conn:
            for job_id in ids:
                if conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount:
                    removed.append(job_id)
        return removed

    def purge(self, queue: str | None, status: str, before: float, dry_run: bool) -> int:
        where = "status = ? AND updated_at <= ?" + ("" if queue is None else " AND queue = ?")
        if status in ("done", "dead"):
            where += " AND status IN ('done', 'dead')"  # lets the planner use jobs_age
        args = (status, before) if queue is None else (status, before, queue)
        if dry_run:
            with self._guard() as conn:
                return conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", args).fetchone()[0]
        with self.transaction(), self._guard() as conn:
            return conn.execute(f"DELETE FROM jobs WHERE {where}", args).rowcount

    def set_status(self, job_id: int, status: str, now: float) -> bool:
        # A job forced into progress is held by no claim: its lease ends now, so the manager's
        # next sweep puts it back instead of it waiting forever. One already in progress keeps
        # its claim.
        sql = (
            "UPDATE jobs SET status = ?, updated_at = ?, available_at = ?,"
            " lease_expires_at = CASE WHEN ? <> 'in_progress' THEN NULL"
            "   WHEN status = 'in_progress' THEN lease_expires_at ELSE ? END,"
            " claimed_at = CASE WHEN ? = 'in_progress' AND status <> 'in_progress' THEN ?"
            "   ELSE claimed_at END,"
            " token = CASE WHEN ? = 'in_progress' THEN token END"
            " WHERE id = ?"
        )
        args = (status, now, now, status, now, status, now, status, job_id)
        with self.transaction(), self._guard() as conn:
            return _revive(conn, sql, args, job_id).rowcount == 1

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
                "INSERT INTO events (at, queue, kind, actor, count, detail, job_ids)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, queue, kind, actor, len(job_ids) if count is None else count, detail, listed),
            ).lastrowid
            conn.executemany(
                "INSERT OR IGNORE INTO job_events (job_id, event_id) VALUES (?, ?)",
                [(job_id, event_id) for job_id in job_ids],
            )

    def events(self, queue: str | None, limit: int, offset: int) -> list[EventRow]:
        where = "kind <> ?" + ("" if queue is None else " AND queue = ?")
        args: tuple = (HISTORY_ONLY,) if queue is None else (HISTORY_ONLY, queue)
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT * FROM events WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [EventRow(*r) for r in rows]

    def history(self, job_id: int) -> list[EventRow]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT e.* FROM job_events j JOIN events e ON e.id = j.event_id"
                " WHERE j.job_id = ? ORDER BY e.id",
                (job_id,),
            ).fetchall()
        return [EventRow(*r) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    def counts(self) -> dict[tuple[str, str], int]:
        with self._guard() as conn:
            rows = conn.execute("SELECT queue, status, n FROM counts").fetchall()
        return {(q, s): n for q, s, n in rows}

    def oldest_ready(self, queue: str) -> float | None:
        with self._guard() as conn:
            row = conn.execute(
                "SELECT created_at FROM jobs INDEXED BY jobs_listing"
                " WHERE queue = ? AND status = 'ready' ORDER BY id LIMIT 1",
                (queue,),
            ).fetchone()
        return None if row is None else row[0]

    def done_per_minute(self, queue: str, since_minute: int) -> dict[int, int]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT minute, n FROM throughput WHERE queue = ? AND minute >= ?",
                (queue, since_minute),
            ).fetchall()
        return dict(rows)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads made inside see one consistent state of the store."""
        with self._snapshot():
            yield

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
            where.append("queue = ?")
            args.append(queue)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern += "%"
            where.append(
                "(CAST(payload AS TEXT) LIKE ? ESCAPE '\\' OR last_error LIKE ? ESCAPE '\\'"
                " OR worker LIKE ? ESCAPE '\\' OR CAST(id AS TEXT) = ?)"
            )
            args.extend([pattern, pattern, pattern, search.strip()])
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        with self._guard() as conn:
            return conn.execute(
                f"SELECT {_COLS} FROM jobs {clause} ORDER BY id {order} LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()

    def row(self, job_id: int) -> Row | None:
        with self._guard() as conn:
            return conn.execute(f"SELECT {_COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()

    # -- workers -----------------------------------------------------------------------------

    def register(self, worker: WorkerRow) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "INSERT INTO workers (id, kind, queue, host, pid, proc_start, started_at,"
                " last_seen, stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id, kind) DO UPDATE SET last_seen = excluded.last_seen,"
                " queue = excluded.queue, stopped = 0",
                worker,
            )

    def heartbeat_worker(self, worker_id: str, kind: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "UPDATE workers SET last_seen = ? WHERE id = ? AND kind = ?",
                (now, worker_id, kind),
            )

    def stop_worker(self, worker_id: str, kind: str, now: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "UPDATE workers SET stopped = 1, last_seen = ? WHERE id = ? AND kind = ?",
                (now, worker_id, kind),
            )

    def workers(self) -> list[WorkerRow]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, kind, queue, host, pid, proc_start, started_at, last_seen, stopped"
                " FROM workers ORDER BY last_seen DESC"
            ).fetchall()
        return [WorkerRow(*r[:-1], bool(r[-1])) for r in rows]

    def forget_workers(self, before: float) -> None:
        with self.transaction(), self._guard() as conn:
            conn.execute("DELETE FROM workers WHERE last_seen < ?", (before,))

    # -- housekeeping ------------------------------------------------------------------------

    def maintain(self, now: float) -> bool:
        with self.transaction(), self._guard() as conn:
            conn.execute("DELETE FROM throughput WHERE minute < ?", (int(now // 60) - 24 * 60,))
        with self._guard() as conn:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and frames > 0 and frames == done and frames > 4096:
                # Everything is in the database file: start the log over so it cannot grow.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return frames > 0

    def wait(self, queue: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._guard() as conn:
            start = conn.execute("PRAGMA data_version").fetchone()[0]
            pause = 0.002
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(pause, left))
                if conn.execute("PRAGMA data_version").fetchone()[0] != start:
                    return
                pause = min(pause * 2, 0.05)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain semicolons of their own)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") or not line.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def _revive(conn: sqlite3.Connection, sql: str, args: tuple, job_id: int) -> sqlite3.Cursor:
    """Run an UPDATE that makes a job live again. If its dedup_key went to a newer live job
    meanwhile, that job keeps the key and this one is revived without it."""
    try:
        return conn.execute(sql, args)
    except sqlite3.IntegrityError:
        conn.execute("UPDATE jobs SET dedup_key = NULL WHERE id = ?", (job_id,))
        return conn.execute(sql, args)


def _last_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()[0]


def _why_not(conn: sqlite3.Connection, job_id: int) -> str:
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return "missing"
    return "lost" if row[0] == "in_progress" else "already"
