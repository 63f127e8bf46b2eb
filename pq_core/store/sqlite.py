"""The SQLite backend: the store file, its schema and migrations, and the hot paths.

One connection per process and thread, never carried across fork. Every write is
`BEGIN IMMEDIATE … COMMIT`, so a writer waits for the lock up front instead of failing midway.
Counters per queue and status are kept in the same transaction as the change: inserts are
counted once per statement (a put_many of 1,000 jobs updates its counter once), status changes
and deletes by triggers, so no statement can forget them. `stats()` never scans the jobs.

Time is the host's clock (`clock`, injectable for tests): one machine, one clock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from pq_core.errors import (
    NotAStore,
    SchemaTooNew,
    StoreCorrupt,
    StoreNotFound,
    StoreReadOnly,
    from_sqlite,
)
from pq_core.model import EventKind, error_signature
from pq_core.store.base import JobRow, NewJob, Outcome
from pq_core.store.sql import (
    CAPPED_LEASE,
    COLS,
    Op,
    Plan,
    SQLStore,
    Stmt,
    T,
    check_batch,
    drive,
    outcome_of,
)
from pq_core.store.sql import write as write_op

# A plan run inside another's transaction: begin, commit, undo.
NESTED = (
    "SAVEPOINT pq_nested",
    "RELEASE pq_nested",
    ("ROLLBACK TO pq_nested", "RELEASE pq_nested"),
)
APPLICATION_ID = 0x70710A01  # "pq" + format family; tells a pq store from any other SQLite file
SCHEMA_VERSION = 2
PAGE_SIZE = 1024
HEADER = b"SQLite format 3\x00"


def _fill_error_signatures(conn: sqlite3.Connection) -> None:
    rows = conn.execute(
        "SELECT id, last_error FROM pq_jobs WHERE last_error IS NOT NULL"
        " AND status IN ('ready', 'dead')"
    ).fetchall()
    conn.executemany(
        "UPDATE pq_jobs SET error_sig = ? WHERE id = ?",
        [(error_signature(error), job_id) for job_id, error in rows],
    )


# Each entry migrates from version i to i + 1.
MIGRATIONS: list[str] = [
    # 1: the first format (kept as it was, so that every store takes the same path forward).
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, payload BLOB NOT NULL,
        encoding TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, available_at REAL NOT NULL,
        lease_expires_at REAL, worker TEXT, last_error TEXT, dedup_key TEXT, token TEXT,
        claimed_at REAL
    );
    CREATE TABLE counts (
        queue TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (queue, status)
    ) WITHOUT ROWID;
    CREATE TABLE throughput (
        queue TEXT NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (queue, minute)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, queue TEXT NOT NULL,
        kind TEXT NOT NULL, actor TEXT NOT NULL, count INTEGER NOT NULL, detail TEXT NOT NULL,
        job_ids TEXT NOT NULL
    );
    CREATE TABLE job_events (
        job_id INTEGER NOT NULL, event_id INTEGER NOT NULL, PRIMARY KEY (job_id, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE workers (
        id TEXT NOT NULL, kind TEXT NOT NULL, queue TEXT NOT NULL, host TEXT NOT NULL,
        pid INTEGER NOT NULL, proc_start TEXT NOT NULL, started_at REAL NOT NULL,
        last_seen REAL NOT NULL, stopped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (id, kind)
    ) WITHOUT ROWID;
    """,
    # 2: one pq_* table set shared with the PostgreSQL store; no AUTOINCREMENT (a claim token,
    # kept through requeue, makes a reused id harmless); counters per statement; failures in
    # each job's own history; paused queues; settings.
    """
    CREATE TABLE pq_jobs (
        id               INTEGER PRIMARY KEY,
        queue            TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        created_at       REAL    NOT NULL,
        updated_at       REAL    NOT NULL,
        available_at     REAL    NOT NULL,
        lease_expires_at REAL,
        claimed_at       REAL,
        worker           TEXT,
        token            TEXT,
        last_error       TEXT,
        error_sig        TEXT,
        dedup_key        TEXT,
        encoding         TEXT    NOT NULL,
        payload          BLOB    NOT NULL
    );
    INSERT INTO pq_jobs (id, queue, status, priority, attempts, max_attempts, created_at,
        updated_at, available_at, lease_expires_at, claimed_at, worker, token, last_error,
        dedup_key, encoding, payload)
        SELECT id, queue, status, priority, attempts, max_attempts, created_at, updated_at,
        available_at, lease_expires_at, claimed_at, worker, token, last_error, dedup_key,
        encoding, payload FROM jobs;

    CREATE TABLE pq_counters (
        queue  TEXT    NOT NULL,
        kind   TEXT    NOT NULL,  -- a status (minute 0: jobs in it now), or done/failed per minute
        minute INTEGER NOT NULL,  -- 0, or epoch seconds // 60
        shard  INTEGER NOT NULL,  -- always 0 here (PostgreSQL: one per connection)
        n      INTEGER NOT NULL,
        PRIMARY KEY (queue, kind, minute, shard)
    ) WITHOUT ROWID;
    INSERT INTO pq_counters SELECT queue, status, 0, 0, count(*) FROM pq_jobs GROUP BY 1, 2;
    INSERT INTO pq_counters SELECT queue, 'done', minute, 0, n FROM throughput;

    CREATE TABLE pq_events (
        id      INTEGER PRIMARY KEY,
        at      REAL    NOT NULL,
        queue   TEXT    NOT NULL,
        kind    TEXT    NOT NULL,
        actor   TEXT    NOT NULL,
        count   INTEGER NOT NULL,
        detail  TEXT    NOT NULL,
        job_ids TEXT    NOT NULL
    );
    INSERT INTO pq_events SELECT * FROM events WHERE kind <> 'failed';
    CREATE TABLE pq_event_jobs (
        job_id   INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        PRIMARY KEY (job_id, event_id)
    ) WITHOUT ROWID;
    INSERT INTO pq_event_jobs SELECT job_id, event_id FROM job_events
        WHERE event_id IN (SELECT id FROM pq_events);
    CREATE TABLE pq_history (
        id     INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL,
        at     REAL    NOT NULL,
        kind   TEXT    NOT NULL,
        actor  TEXT    NOT NULL,
        detail TEXT    NOT NULL
    );
    INSERT INTO pq_history (job_id, at, kind, actor, detail)
        SELECT j.job_id, e.at, e.kind, e.actor, e.detail FROM events e
        JOIN job_events j ON j.event_id = e.id WHERE e.kind = 'failed';

    CREATE TABLE pq_workers (
        id          TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        queue       TEXT    NOT NULL,
        host        TEXT    NOT NULL,
        pid         INTEGER NOT NULL,
        started_at  REAL    NOT NULL,
        last_seen   REAL    NOT NULL,
        stopped     INTEGER NOT NULL DEFAULT 0,
        done_recent INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (id, kind, queue)
    ) WITHOUT ROWID;
    INSERT INTO pq_workers SELECT id, kind, queue, host, pid, started_at, last_seen, stopped, 0
        FROM workers;
    CREATE TABLE pq_queues (
        name       TEXT    PRIMARY KEY,
        paused     INTEGER NOT NULL,
        changed_at REAL    NOT NULL,
        changed_by TEXT    NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE pq_meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;

    DROP TABLE jobs;
    DROP TABLE counts;
    DROP TABLE throughput;
    DROP TABLE events;
    DROP TABLE job_events;
    DROP TABLE workers;

    -- claim: only ready jobs are in it, so done jobs piling up never slow a claim
    CREATE INDEX pq_jobs_claim ON pq_jobs (queue, priority DESC, available_at, id)
        WHERE status = 'ready';
    CREATE INDEX pq_jobs_lease ON pq_jobs (lease_expires_at, worker)
        WHERE status = 'in_progress';
    -- listings and the oldest ready job, per queue and status, in id order
    CREATE INDEX pq_jobs_listing ON pq_jobs (queue, status, id);
    -- purge by age: only finished jobs, so a claim does not touch it
    CREATE INDEX pq_jobs_finished ON pq_jobs (queue, status, updated_at)
        WHERE status IN ('done', 'dead');
    CREATE UNIQUE INDEX pq_jobs_dedup ON pq_jobs (queue, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('ready', 'in_progress');
    -- scheduled jobs: only those ever delayed, retried or requeued are in it
    CREATE INDEX pq_jobs_waiting ON pq_jobs (queue, available_at)
        WHERE status = 'ready' AND available_at > created_at;
    -- the errors view: only failing and dead jobs are in it
    CREATE INDEX pq_jobs_errors ON pq_jobs (queue, error_sig)
        WHERE error_sig IS NOT NULL AND status IN ('ready', 'dead');
    CREATE INDEX pq_events_at ON pq_events (at);
    CREATE INDEX pq_event_jobs_event ON pq_event_jobs (event_id);
    CREATE INDEX pq_history_job ON pq_history (job_id);

    CREATE TRIGGER pq_jobs_moved AFTER UPDATE OF status ON pq_jobs
        WHEN OLD.status <> NEW.status BEGIN
        UPDATE pq_counters SET n = n - 1
            WHERE queue = OLD.queue AND kind = OLD.status AND minute = 0 AND shard = 0;
        INSERT INTO pq_counters (queue, kind, minute, shard, n)
            VALUES (NEW.queue, NEW.status, 0, 0, 1)
            ON CONFLICT (queue, kind, minute, shard) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER pq_jobs_finished_now AFTER UPDATE OF status ON pq_jobs
        WHEN NEW.status = 'done' AND OLD.status <> 'done' BEGIN
        INSERT INTO pq_counters (queue, kind, minute, shard, n)
            VALUES (NEW.queue, 'done', CAST(NEW.updated_at / 60 AS INTEGER), 0, 1)
            ON CONFLICT (queue, kind, minute, shard) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER pq_jobs_removed AFTER DELETE ON pq_jobs BEGIN
        UPDATE pq_counters SET n = n - 1
            WHERE queue = OLD.queue AND kind = OLD.status AND minute = 0 AND shard = 0;
    END;
    """,
]
# Python steps run after the script of the same version.
AFTER_MIGRATION: dict[int, Callable[[sqlite3.Connection], None]] = {2: _fill_error_signatures}


class SQLiteStore(SQLStore):
    """A pq store in one SQLite file. Thread-safe: each thread gets its own connection."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "full",
        busy_timeout: float = 30.0,
        read_only: bool = False,
        create: bool = True,
        mode: int = 0o600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.location = os.path.abspath(os.fspath(path))
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.mode = mode
        self._synchronous = {"full": "FULL", "normal": "NORMAL"}[durability]
        self._local = threading.local()
        self._orphans: list[sqlite3.Connection] = []  # inherited across fork: never touched
        fresh = self._prepare_file(create)
        self._migrate(fresh)

    # -- the file ------------------------------------------------------------------------------

    def _prepare_file(self, create: bool) -> bool:
        """Check the path before SQLite touches it. True when the file is ours to initialise:
        created here, or an empty file of this user with no log beside it."""
        path = self.location
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise StoreNotFound(f"{path}: no such store: folder {folder} does not exist")
        if os.path.isdir(path):
            raise NotAStore(f"{path}: is a folder, not a pq store")
        if not os.path.exists(path):
            if self.read_only or not create:
                raise StoreNotFound(f"{path}: no such store")
            try:
                # Created here, not by SQLite, so that only the owner can read the jobs.
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, self.mode))
                os.chmod(path, self.mode)  # whatever the umask
                return True
            except FileExistsError:
                pass  # another process created it this instant: check it like any file
            except PermissionError as exc:
                raise StoreReadOnly(
                    f"{path}: cannot create the store here ({exc.strerror})"
                ) from None
        info = os.stat(path)
        mine = info.st_uid == os.geteuid()
        if info.st_size == 0:
            if _size(path + "-wal") > 0:
                raise StoreCorrupt(
                    f"{path}: the store file is empty but its write-ahead log is not: it was "
                    "truncated or damaged; refusing to start it over (restore it from a backup)"
                )
            if not mine:
                raise NotAStore(
                    f"{path}: an empty file of another user (uid {info.st_uid}); pq does not "
                    "adopt it"
                )
            if self.read_only:
                raise StoreNotFound(f"{path}: an empty file, not a pq store yet")
            return True
        if not self.read_only:
            if not mine and not _shared_with_me(info):
                raise StoreReadOnly(
                    f"{path}: the store belongs to another user (uid {info.st_uid}); open it "
                    "with read_only=True to inspect it, or as its owner"
                )
            if not os.access(path, os.W_OK):
                raise StoreReadOnly(
                    f"{path}: store is read-only for this user; "
                    "open it with read_only=True to inspect it"
                )
        with open(path, "rb") as f:
            head = f.read(len(HEADER))
        if head != HEADER:
            raise NotAStore(f"{path}: not a SQLite database (not a pq store)")
        return False

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
            local.conn, local.pid = conn, pid
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    # -- running plans -------------------------------------------------------------------------

    def _run(self, op: Op, plan: Plan[T]) -> T:
        if op.write and self.read_only:
            plan.close()
            raise StoreReadOnly(f"{self.location}: opened read-only; this change is refused")
        conn = self._conn
        now = self.clock()
        depth = getattr(self._local, "depth", 0)
        if depth:
            # Called while another plan runs on this connection (from take_back's decide): a
            # transaction inside that one, undone alone if it fails.
            begin, commit, undo = NESTED
        elif op.write:
            begin, commit, undo = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        elif op.single:
            begin, commit, undo = None, None, ()
        else:
            begin, commit, undo = "BEGIN", "COMMIT", ("ROLLBACK",)
        try:
            if begin:
                conn.execute(begin)
            self._local.depth = depth + 1 if begin else depth  # inside a transaction
            try:
                result = drive(plan, lambda stmt: _execute(conn, stmt, now))
                if commit:
                    conn.execute(commit)
            except BaseException:
                if conn.in_transaction:
                    try:
                        for statement in undo:
                            conn.execute(statement)
                    except sqlite3.Error:
                        pass  # SQLite may already have rolled back (e.g. on a full disk)
                raise
            finally:
                self._local.depth = depth
        except sqlite3.Error as exc:
            raise from_sqlite(exc, self.location) from None
        return result

    # -- schema --------------------------------------------------------------------------------

    def _migrate(self, fresh: bool) -> None:
        path = self.location
        conn = self._conn
        try:
            # One statement, one snapshot: a store another process is creating at this moment
            # is seen before or after, never half-made (which would look like a foreign file).
            app_id, version, tables = conn.execute(
                "SELECT (SELECT application_id FROM pragma_application_id),"
                " (SELECT user_version FROM pragma_user_version),"
                " (SELECT count(*) FROM sqlite_master)"
            ).fetchone()
        except sqlite3.Error as exc:
            raise from_sqlite(exc, path) from None
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
        try:
            if tables == 0:
                # Small pages: a claim or an ack touches ~6 pages (row, indexes, counters), and
                # each is written whole to the log; 1 KiB pages make every commit cheaper.
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise NotAStore(f"{path}: cannot use write-ahead logging on this file")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # another may have won
                for step in range(version, SCHEMA_VERSION):
                    for statement in _statements(MIGRATIONS[step]):
                        conn.execute(statement)
                    if step + 1 in AFTER_MIGRATION:
                        AFTER_MIGRATION[step + 1](conn)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise from_sqlite(exc, path) from None
        if fresh:
            for suffix in ("", "-wal", "-shm"):  # SQLite made these; only the owner reads them
                try:
                    os.chmod(path + suffix, self.mode)
                except FileNotFoundError:
                    pass

    # -- producer ------------------------------------------------------------------------------

    @write_op
    def insert(self, jobs: Sequence[NewJob]) -> Plan[list[int]]:
        sql = (
            "INSERT INTO pq_jobs (queue, payload, encoding, status, priority, max_attempts,"
            " available_at, dedup_key, created_at, updated_at)"
            " VALUES (:queue, :payload, :encoding, 'ready', :priority, :max_attempts,"
            " :now + :delay, :dedup_key, :now, :now)"
        )
        check_batch(jobs)
        added: dict[str, int] = defaultdict(int)
        if all(job.dedup_key is None for job in jobs):
            if len(jobs) == 1:
                [(job_id,)] = yield Stmt(sql + " RETURNING id", jobs[0]._asdict())
                ids = [job_id]
            else:
                # One set of options (check_batch): each row binds by position, the options once.
                [(now,)] = yield Stmt("SELECT :now")
                q, _p, _e, priority, attempts, delay, _d = jobs[0]
                yield Stmt(
                    "INSERT INTO pq_jobs (queue, payload, encoding, status, priority,"
                    " max_attempts, available_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?)",
                    many=[(q, j[1], j[2], priority, attempts, now + delay, now, now) for j in jobs],
                )
                # Under the write lock, one statement's rows get consecutive ids.
                [(last,)] = yield Stmt("SELECT last_insert_rowid()")
                ids = list(range(last - len(jobs) + 1, last + 1))
            for job in jobs:
                added[job.queue] += 1
        else:
            ids = []
            for job in jobs:
                row = yield Stmt(sql + " ON CONFLICT DO NOTHING RETURNING id", job._asdict())
                if row:
                    added[job.queue] += 1
                else:
                    row = yield Stmt(
                        "SELECT id FROM pq_jobs WHERE queue = :queue AND dedup_key = :key"
                        " AND status IN ('ready', 'in_progress')",
                        {"queue": job.queue, "key": job.dedup_key},
                    )
                ids.append(row[0][0])
        for queue, n in added.items():
            yield from self._count(queue, "ready", n)
        return ids

    def _count(self, queue: str, kind: str, n: int, per_minute: bool = False) -> Plan[None]:
        minute = "CAST(:now / 60 AS INTEGER)" if per_minute else "0"
        yield Stmt(
            "INSERT INTO pq_counters (queue, kind, minute, shard, n)"
            f" VALUES (:queue, :kind, {minute}, 0, :n)"
            " ON CONFLICT (queue, kind, minute, shard) DO UPDATE SET n = n + excluded.n",
            {"queue": queue, "kind": kind, "n": n},
        )

    # -- consumer ------------------------------------------------------------------------------

    @write_op
    def claim(
        self,
        queue: str,
        limit: int,
        lease: float,
        worker: str,
        token: str,
        ack: Sequence[tuple[int, str]] = (),
    ) -> Plan[tuple[list[JobRow], list[Outcome]]]:
        outcomes = (yield from self._complete(ack)) if ack else []
        rows = yield Stmt(
            "UPDATE pq_jobs SET status = 'in_progress', attempts = attempts + 1,"
            " token = :token, worker = :worker, updated_at = :now, claimed_at = :now,"
            f" lease_expires_at = :now + {CAPPED_LEASE}"
            " WHERE id IN (SELECT id FROM pq_jobs INDEXED BY pq_jobs_claim"
            "   WHERE queue = :queue AND status = 'ready' AND available_at <= :now"
            "   AND NOT EXISTS (SELECT 1 FROM pq_queues WHERE name = :queue AND paused)"
            "   ORDER BY priority DESC, available_at, id LIMIT :limit)"
            f" RETURNING {COLS}",
            {"queue": queue, "limit": limit, "lease": lease, "worker": worker, "token": token},
        )
        if len(rows) > 1:
            rows.sort(key=lambda r: (-r[5], r[10], r[0]))
        return [JobRow(*r) for r in rows], outcomes

    @write_op
    def complete(self, claims: Sequence[tuple[int, str]]) -> Plan[list[Outcome]]:
        return (yield from self._complete(claims))

    def _complete(self, claims: Sequence[tuple[int, str]]) -> Plan[list[Outcome]]:
        if len(claims) == 1:
            ((job_id, token),) = claims
            rows = yield Stmt(
                "UPDATE pq_jobs SET status = 'done', updated_at = :now, lease_expires_at = NULL"
                " WHERE id = :id AND token = :token AND status <> 'done' RETURNING id, token",
                {"id": job_id, "token": token},
            )
        else:
            # The jobs of one get_many share a token: one statement per token, each a lookup
            # by id.
            by_token: dict[str, list[int]] = defaultdict(list)
            for job_id, token in claims:
                by_token[token].append(job_id)
            rows = []
            for token, ids in by_token.items():
                rows += yield Stmt(
                    "UPDATE pq_jobs SET status = 'done', updated_at = :now,"
                    " lease_expires_at = NULL"
                    " WHERE id IN (SELECT value FROM json_each(:ids)) AND token = :token"
                    " AND status <> 'done' RETURNING id, token",
                    {"ids": ids, "token": token},
                )
        # By (id, token): a claim that names a job settled by another claim in the same call
        # did not change it.
        changed = {(r[0], r[1]) for r in rows}
        if len(changed) == len(claims):
            return [Outcome.CHANGED] * len(claims)
        now = yield Stmt(
            "SELECT id, status, token FROM pq_jobs WHERE id IN (SELECT value FROM json_each(:ids))",
            {"ids": [c[0] for c in claims if tuple(c) not in changed]},
        )
        state = {r[0]: (r[1], r[2]) for r in now}
        return [
            Outcome.CHANGED if (job_id, token) in changed else outcome_of(token, state.get(job_id))
            for job_id, token in claims
        ]

    @write_op
    def fail(
        self,
        job_id: int,
        token: str,
        status: str,
        retry_in: float,
        error: str | None,
        error_sig: str | None,
        actor: str,
    ) -> Plan[tuple[Outcome, str | None]]:
        rows = yield Stmt(
            "UPDATE pq_jobs SET status = :status, available_at = :now + :retry_in,"
            " last_error = :error, error_sig = :sig, updated_at = :now, lease_expires_at = NULL"
            " WHERE id = :id AND token = :token AND status = 'in_progress'"
            " RETURNING queue, attempts, max_attempts",
            {"id": job_id, "token": token, "status": status, "retry_in": retry_in,
             "error": error, "sig": error_sig},
        )  # fmt: skip
        if not rows:
            return (yield from self._why_not(job_id, token))
        [(queue, attempts, max_attempts)] = rows
        kind = EventKind.DEAD if status == "dead" else EventKind.FAILED
        detail = f"attempt {attempts}/{max_attempts}: {error or 'failed'}"
        yield Stmt(
            "INSERT INTO pq_history (job_id, at, kind, actor, detail)"
            " VALUES (:id, :now, :kind, :actor, :detail)",
            {"id": job_id, "kind": kind, "actor": actor, "detail": detail},
        )
        yield from self._count(queue, "failed", 1, per_minute=True)
        return Outcome.CHANGED, status

    def _why_not(self, job_id: int, token: str) -> Plan[tuple[Outcome, str | None]]:
        rows = yield Stmt("SELECT status, token FROM pq_jobs WHERE id = :id", {"id": job_id})
        if not rows:
            return Outcome.MISSING, None
        return outcome_of(token, rows[0]), rows[0][0]

    @write_op
    def extend(
        self, job_id: int, token: str, lease: float
    ) -> Plan[tuple[Outcome, tuple[float, float] | None]]:
        rows = yield Stmt(
            f"UPDATE pq_jobs SET lease_expires_at = :now + {CAPPED_LEASE}, updated_at = :now"
            " WHERE id = :id AND token = :token AND status = 'in_progress'"
            " RETURNING updated_at, lease_expires_at",
            {"id": job_id, "token": token, "lease": lease},
        )
        if rows:
            return Outcome.CHANGED, (rows[0][0], rows[0][1])
        outcome, _status = yield from self._why_not(job_id, token)
        return outcome, None

    @write_op
    def release(self, job_id: int, token: str) -> Plan[Outcome]:
        rows = yield Stmt(
            "UPDATE pq_jobs SET status = 'ready', available_at = :now, updated_at = :now,"
            " lease_expires_at = NULL, attempts = max(attempts - 1, 0)"
            " WHERE id = :id AND token = :token AND status = 'in_progress' RETURNING id",
            {"id": job_id, "token": token},
        )
        if rows:
            return Outcome.CHANGED
        outcome, _status = yield from self._why_not(job_id, token)
        return outcome

    # -- manager -------------------------------------------------------------------------------

    def maintain(self, event_retention: float, worker_retention: float) -> bool:
        self._tidy(event_retention, worker_retention)
        conn = self._conn
        try:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and frames > 0 and frames == done and frames > 4096:
                # Everything is in the database file: start the log over so it cannot grow.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise from_sqlite(exc, self.location) from None
        return frames > 0

    def _integrity(self) -> Plan[list[str]]:
        rows = yield Stmt("PRAGMA integrity_check")
        return [] if [r[0] for r in rows] == ["ok"] else [f"integrity: {r[0]}" for r in rows]

    def _search(self) -> str:
        # LIKE ignores case but stops at a NUL in a text payload; instr on the bytes does not.
        return (
            "(CAST(payload AS TEXT) LIKE :pattern ESCAPE '\\'"
            " OR instr(CAST(payload AS BLOB), CAST(:needle AS BLOB)) > 0"
            " OR last_error LIKE :pattern ESCAPE '\\'"
            " OR worker LIKE :pattern ESCAPE '\\' OR id = :search_id)"
        )

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, queue: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        try:
            conn = self._conn
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
        except sqlite3.Error as exc:
            raise from_sqlite(exc, self.location) from None

    def quiet(self) -> None:
        pass  # nothing listens: wait() polls


def _execute(conn: sqlite3.Connection, stmt: Stmt, now: float) -> list[tuple]:
    if stmt.many is not None:
        rows = stmt.many
        positional = bool(rows) and isinstance(rows[0], tuple)  # bound as they are
        conn.executemany(stmt.sql, rows if positional else [_bind(p, now) for p in rows])
        return []
    return conn.execute(stmt.sql, _bind(stmt.params, now)).fetchall()


def _bind(params: Any, now: float) -> dict[str, Any]:
    bound = {k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()}
    bound["now"] = now
    return bound


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


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _shared_with_me(info: os.stat_result) -> bool:
    """A file of another user that its owner deliberately shares: group-writable, and this
    process is in its group."""
    return bool(info.st_mode & stat.S_IWGRP) and (
        info.st_gid == os.getegid() or info.st_gid in os.getgroups()
    )
