"""The PostgreSQL backend: the same contract as the SQLite store, for many machines.

- The server's clock decides every lease, delay and age (`pq_now()`), so clients whose clocks
  disagree still agree on who holds a job. Tests stop that clock by replacing `pq_now()` in
  their store's schema.
- Each hot call is one statement, so one round trip: put (with its wake-up), claim (with the
  fused ack of the previous job), done, fail, heartbeat, release. Claims use
  `FOR UPDATE SKIP LOCKED`, so consumers never wait on each other's rows.
- Counters are kept by each statement that moves jobs, in the same transaction, one row set
  per server connection (`shard` = the backend's pid), so writers on many machines never wait
  on a shared counter row; the manager folds the rows of connections that are gone.
- A waiting `get(timeout=…)` LISTENs on its queue's own channel only while it waits.
- A connection that failed is dropped; the next call connects again (`ConnectionLost`).
- `?schema=NAME` in the URL keeps a store in a schema of its own; tables are named pq_*.

The driver (psycopg 3) is imported only when this backend is used.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import threading
import urllib.parse
import weakref
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pq_core import steps
from pq_core.errors import (
    ConnectionLost,
    InvalidValue,
    SchemaTooNew,
    StoreError,
    StoreNotFound,
    StoreReadOnly,
    from_postgres,
    redact,
)
from pq_core.model import EventKind
from pq_core.store.base import COLUMNS, JobRow, NewJob, Outcome
from pq_core.store.sql import Op, Plan, SQLStore, Stmt, T, check_batch, drive, write

SCHEMA_VERSION = 2
# A plan run inside another's transaction: begin, commit, undo.
NESTED = (
    "SAVEPOINT pq_nested",
    "RELEASE SAVEPOINT pq_nested",
    ("ROLLBACK TO SAVEPOINT pq_nested", "RELEASE SAVEPOINT pq_nested"),
)
DEDUP_TRIES = 20  # a put whose key's live job finishes meanwhile tries again
TEXT_LISTS = {"gone"}  # list parameters that hold text; the others hold job ids

MIGRATIONS: list[str] = [
    # 1: the first format.
    """
    CREATE TABLE pq_jobs (
        id BIGSERIAL PRIMARY KEY, queue TEXT NOT NULL, payload BYTEA NOT NULL,
        encoding TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        available_at DOUBLE PRECISION NOT NULL, lease_expires_at DOUBLE PRECISION,
        worker TEXT, last_error TEXT, dedup_key TEXT, token TEXT, claimed_at DOUBLE PRECISION
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
        id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, queue TEXT NOT NULL,
        kind TEXT NOT NULL, actor TEXT NOT NULL, count INTEGER NOT NULL, detail TEXT NOT NULL,
        job_ids TEXT NOT NULL
    );
    CREATE TABLE pq_job_events (
        job_id BIGINT NOT NULL, event_id BIGINT NOT NULL, PRIMARY KEY (job_id, event_id)
    );
    CREATE TABLE pq_workers (
        id TEXT NOT NULL, kind TEXT NOT NULL, queue TEXT NOT NULL, host TEXT NOT NULL,
        pid INTEGER NOT NULL, proc_start TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL, stopped BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (id, kind)
    );
    """,
    # 2: the server's clock; counters kept by triggers; failures in each job's own history;
    # paused queues; indexes for scheduled jobs, errors and purging by age per queue.
    """
    -- The store's clock. Tests stop it by replacing this function in their store's schema.
    CREATE FUNCTION pq_now() RETURNS DOUBLE PRECISION LANGUAGE sql STABLE AS $$
        SELECT extract(epoch FROM now())
    $$;
    CREATE FUNCTION pq_channel(queue TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
        SELECT 'pq_' || md5(current_schema() || '/' || queue)
    $$;

    ALTER TABLE pq_jobs ADD COLUMN error_sig TEXT;
    DROP INDEX pq_jobs_age;
    CREATE INDEX pq_jobs_finished ON pq_jobs (queue, status, updated_at)
        WHERE status IN ('done', 'dead');
    CREATE INDEX pq_jobs_waiting ON pq_jobs (queue, available_at)
        WHERE status = 'ready' AND available_at > created_at;
    CREATE INDEX pq_jobs_errors ON pq_jobs (queue, error_sig)
        WHERE error_sig IS NOT NULL AND status IN ('ready', 'dead');

    CREATE TABLE pq_counters (
        queue TEXT NOT NULL, kind TEXT NOT NULL, minute BIGINT NOT NULL,
        shard INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (queue, kind, minute, shard)
    );
    INSERT INTO pq_counters SELECT queue, status, 0, 0, count(*) FROM pq_jobs GROUP BY 1, 2;
    INSERT INTO pq_counters
        SELECT queue, 'done', CAST(floor(updated_at / 60) AS BIGINT), 0, count(*) FROM pq_jobs
        WHERE status = 'done' AND updated_at > extract(epoch FROM now()) - 86400
        GROUP BY 1, 3;

    CREATE TABLE pq_history (
        id BIGSERIAL PRIMARY KEY, job_id BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL
    );
    INSERT INTO pq_history (job_id, at, kind, actor, detail)
        SELECT j.job_id, e.at, e.kind, e.actor, e.detail FROM pq_events e
        JOIN pq_job_events j ON j.event_id = e.id WHERE e.kind = 'failed';
    DELETE FROM pq_job_events WHERE event_id IN (SELECT id FROM pq_events WHERE kind = 'failed');
    DELETE FROM pq_events WHERE kind = 'failed';
    ALTER TABLE pq_job_events RENAME TO pq_event_jobs;
    CREATE INDEX pq_event_jobs_event ON pq_event_jobs (event_id);
    CREATE INDEX pq_events_at ON pq_events (at);
    CREATE INDEX pq_history_job ON pq_history (job_id);

    ALTER TABLE pq_workers DROP COLUMN proc_start;
    ALTER TABLE pq_workers ADD COLUMN done_recent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pq_workers DROP CONSTRAINT pq_workers_pkey;
    ALTER TABLE pq_workers ADD PRIMARY KEY (id, kind, queue);
    CREATE TABLE pq_queues (
        name TEXT PRIMARY KEY, paused BOOLEAN NOT NULL,
        changed_at DOUBLE PRECISION NOT NULL, changed_by TEXT NOT NULL
    );

    """,
]

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_JSON_EACH = re.compile(r"json_each\(:(\w+)\)")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """The shared SQL (SQLite's dialect) in PostgreSQL's: `:now` is the server's clock,
    `json_each(:ids)` an array of ids, `:name` a psycopg parameter."""
    sql = _JSON_EACH.sub(
        lambda m: (
            f"unnest(CAST(:{m[1]} AS {'text' if m[1] in TEXT_LISTS else 'bigint'}[])) AS value"
        ),
        sql,
    )
    sql = sql.replace("%", "%%")
    sql = sql.replace("CAST(:now / 60 AS INTEGER)", "CAST(floor(pq_now() / 60) AS BIGINT)")
    sql = re.sub(r"(?<![:\w]):now\b", "pq_now()", sql)
    sql = sql.replace("CAST(value AS REAL)", "CAST(value AS DOUBLE PRECISION)")
    return _PARAM.sub(r"%(\1)s", sql)


def channel(schema: str, queue: str) -> str:
    """The LISTEN channel of one queue of one store (what `pq_channel()` computes)."""
    return "pq_" + hashlib.md5(f"{schema}/{queue}".encode(), usedforsecurity=False).hexdigest()


class Target:
    """A postgresql:// URL split into what libpq takes, pq's own `schema`, and a form safe to
    print (no password)."""

    def __init__(self, url: str) -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise InvalidValue(f"malformed PostgreSQL URL: {redact(url)}") from None
        self.schema = next((v for k, v in query if k == "schema"), None)
        if self.schema is not None and not self.schema:
            raise InvalidValue(f"{redact(url)}: schema= needs a name")
        kept = [(k, v) for k, v in query if k != "schema"]
        if not any(k == "application_name" for k, _ in kept):
            kept.append(("application_name", "pq"))
        self.conninfo = _url(parts._replace(query=urllib.parse.urlencode(kept)))
        shown = [(k, "***" if k.lower() == "password" else v) for k, v in query]
        netloc = parts.netloc
        if "@" in netloc:
            user, host = netloc.rsplit("@", 1)
            netloc = f"{user.split(':', 1)[0]}@{host}"
        self.location = _url(
            parts._replace(netloc=netloc, query=urllib.parse.urlencode(shown, safe="*"))
        )


def _url(parts: urllib.parse.SplitResult) -> str:
    """A URL back from its parts, keeping `//` when the host is left out (`postgresql:///db`,
    a service or socket URL), which urlunsplit would drop for a scheme it does not know."""
    url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.query:
        url += f"?{parts.query}"
    return url + (f"#{parts.fragment}" if parts.fragment else "")


class PostgresPlans(SQLStore):
    """The PostgreSQL dialect: the hot paths, each one statement, and the hooks of SQLStore."""

    LOCK = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def _job(self, row: tuple) -> JobRow:
        """Payloads are stored as bytes; str and JSON payloads come back as text."""
        payload = bytes(row[2])
        value: str | bytes = payload if row[3] == "bytes" else payload.decode("utf-8")
        return JobRow(row[0], row[1], value, *row[3:])

    def _count(self, queue: str, kind: str, n: int, per_minute: bool = False) -> Plan[None]:
        minute = "CAST(floor(pq_now() / 60) AS BIGINT)" if per_minute else "0"
        yield Stmt(
            "INSERT INTO pq_counters (queue, kind, minute, shard, n)"
            f" VALUES (:queue, :kind, {minute}, pg_backend_pid(), :n)"
            " ON CONFLICT (queue, kind, minute, shard)"
            " DO UPDATE SET n = pq_counters.n + excluded.n",
            {"queue": queue, "kind": kind, "n": n},
        )

    def _moved(self, moves: Sequence[tuple[str, str | None, str | None]]) -> Plan[None]:
        deltas: dict[tuple[str, str, bool], int] = defaultdict(int)
        for queue, before, after in moves:
            if before == after:
                continue
            if before is not None:
                deltas[(queue, before, False)] -= 1
            if after is not None:
                deltas[(queue, after, False)] += 1
            if after == "done":
                deltas[(queue, "done", True)] += 1
        changed = [(key, n) for key, n in sorted(deltas.items()) if n]
        if changed:
            yield Stmt(
                "INSERT INTO pq_counters (queue, kind, minute, shard, n)"
                " SELECT queue, kind,"
                " CASE WHEN per_minute THEN CAST(floor(:now / 60) AS BIGINT) ELSE 0 END,"
                " pg_backend_pid(), n FROM unnest(CAST(:queues AS text[]),"
                " CAST(:kinds AS text[]), CAST(:per_minute AS boolean[]),"
                " CAST(:ns AS bigint[])) AS d (queue, kind, per_minute, n)"
                " ON CONFLICT (queue, kind, minute, shard)"
                " DO UPDATE SET n = pq_counters.n + excluded.n",
                {
                    "queues": [k[0] for k, _ in changed],
                    "kinds": [k[1] for k, _ in changed],
                    "per_minute": [k[2] for k, _ in changed],
                    "ns": [n for _, n in changed],
                },
            )

    def _wake(self, queues: Sequence[str]) -> Plan[None]:
        if queues:
            yield Stmt(
                "SELECT pg_notify(pq_channel(q), '') FROM unnest(CAST(:queues AS text[])) AS q",
                {"queues": sorted(set(queues))},
            )

    def _search(self) -> str:
        # Text payloads are valid UTF-8 (pq refuses lone surrogates) but may hold NUL, which
        # PostgreSQL text cannot: those, and bytes, are searched for the search text's own
        # bytes (not in an escaped form, whose backslashes every search for one would find).
        return (
            "(CASE WHEN encoding <> 'bytes' AND position('\\x00'::bytea IN payload) = 0"
            "   THEN convert_from(payload, 'UTF8') ILIKE :pattern"
            "   ELSE position(convert_to(:needle, 'UTF8') IN payload) > 0 END"
            " OR last_error ILIKE :pattern OR worker ILIKE :pattern OR id = :search_id)"
        )

    # -- producer ------------------------------------------------------------------------------

    @write(single=True)
    def insert(self, jobs: Sequence[NewJob]) -> Plan[list[int]]:
        if len(jobs) == 1:
            job = jobs[0]
            args = {**job._asdict(), "payload": _bytes(job.payload)}
            if job.dedup_key is None:
                [(job_id,)] = yield Stmt(_INSERT_ONE, args)
                return [job_id]
            for _ in range(DEDUP_TRIES):
                rows = yield Stmt(_INSERT_DEDUP, args)
                if rows:
                    return [rows[0][0]]
            raise StoreError(
                f"{self.location}: the live job holding dedup_key {job.dedup_key!r} kept "
                "changing; nothing was stored"
            )
        check_batch(jobs)
        first = jobs[0]
        rows = yield Stmt(
            _INSERT_MANY,
            {
                "payloads": [_bytes(j.payload) for j in jobs],
                "encodings": [j.encoding for j in jobs],
                "queue": first.queue,
                "priority": first.priority,
                "max_attempts": first.max_attempts,
                "delay": first.delay,
            },
        )
        return sorted(r[0] for r in rows)

    # -- consumer ------------------------------------------------------------------------------

    @write(single=True)
    def claim(
        self,
        queue: str,
        limit: int,
        lease: float,
        worker: str,
        token: str,
        ack: Sequence[tuple[int, str]] = (),
    ) -> Plan[tuple[list[JobRow], list[Outcome]]]:
        args = {
            "queue": queue,
            "limit": limit,
            "lease": lease,
            "worker": worker,
            "token": token,
            "ack_ids": [a[0] for a in ack],
            "ack_tokens": [a[1] for a in ack],
        }
        rows = yield Stmt(_CLAIM_ACK if ack else _CLAIM, args)
        jobs = [self._job(r[1:]) for r in rows if r[0] == "job"]
        jobs.sort(key=lambda r: (-r.priority, r.available_at, r.id))
        acked = {(r[1], r[5]) for r in rows if r[0] == "ack"}
        return jobs, (yield from self._the_rest(ack, acked))

    @write(single=True)
    def complete(self, claims: Sequence[tuple[int, str]]) -> Plan[list[Outcome]]:
        rows = yield Stmt(
            _COMPLETE_HELD, {"ids": [c[0] for c in claims], "tokens": [c[1] for c in claims]}
        )
        return (yield from self._the_rest(claims, {(r[0], r[1]) for r in rows}))

    def _the_rest(
        self, claims: Sequence[tuple[int, str]], acked: set[tuple[int, str]]
    ) -> Plan[list[Outcome]]:
        """Outcomes of these claims: CHANGED for those acked as held claims; the others
        (late acks, claims lost or gone) take the long way, one more statement."""
        rest = [c for c in claims if tuple(c) not in acked]
        said: dict[int, Outcome] = {}
        if rest:
            rows = yield Stmt(
                _COMPLETE, {"ids": [c[0] for c in rest], "tokens": [c[1] for c in rest]}
            )
            said = {r[0]: Outcome(r[1]) for r in rows}  # by position in `rest`
        outcomes, at = [], 0
        for claim in claims:
            if tuple(claim) in acked:
                outcomes.append(Outcome.CHANGED)
            else:
                at += 1
                outcomes.append(said.get(at, Outcome.MISSING))
        return outcomes

    @write(single=True)
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
        kind = EventKind.DEAD if status == "dead" else EventKind.FAILED
        rows = yield Stmt(
            _FAIL,
            {"id": job_id, "token": token, "status": status, "retry_in": retry_in,
             "error": error, "sig": error_sig, "actor": actor, "kind": kind.value},
        )  # fmt: skip
        if not rows:
            return Outcome.MISSING, None
        return Outcome(rows[0][0]), rows[0][1]

    @write(single=True)
    def extend(
        self, job_id: int, token: str, lease: float
    ) -> Plan[tuple[Outcome, tuple[float, float] | None]]:
        rows = yield Stmt(_EXTEND, {"id": job_id, "token": token, "lease": lease})
        if not rows:
            return Outcome.MISSING, None
        outcome, updated, expires = rows[0]
        return Outcome(outcome), None if expires is None else (updated, expires)

    @write(single=True)
    def release(self, job_id: int, token: str) -> Plan[Outcome]:
        rows = yield Stmt(_RELEASE, {"id": job_id, "token": token})
        return Outcome(rows[0][0]) if rows else Outcome.MISSING

    @write
    def _fold_counters(self) -> Plan[None]:
        """Fold the counter rows of server connections that are gone into shard 0, so the
        counters stay a few rows per live connection."""
        yield Stmt(
            "WITH gone AS (DELETE FROM pq_counters c WHERE shard <> 0 AND NOT EXISTS"
            "   (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.shard)"
            "   RETURNING queue, kind, minute, n)"
            " INSERT INTO pq_counters (queue, kind, minute, shard, n)"
            " SELECT queue, kind, minute, 0, sum(n) FROM gone GROUP BY queue, kind, minute"
            " ON CONFLICT (queue, kind, minute, shard)"
            " DO UPDATE SET n = pq_counters.n + excluded.n"
        )


# -- the hot statements ------------------------------------------------------------------------

_COLS = ", ".join(COLUMNS)
_J_COLS = ", ".join(f"j.{c}" for c in COLUMNS)
_CAPPED = (
    "least(:lease, coalesce((SELECT CAST(value AS DOUBLE PRECISION) FROM pq_meta"
    " WHERE key = 'lease_cap'), :lease))"
)
_WAKE_ONE = (
    "(SELECT count(pg_notify(pq_channel(queue), '')) FROM (SELECT DISTINCT queue FROM job) q)"
)

# Counters, kept by each statement that moves jobs: `moves` (queue, kind, minute, n) summed into
# this connection's own rows, so writers on many connections never wait on one another.
_COUNTED = (
    " counted AS (INSERT INTO pq_counters (queue, kind, minute, shard, n)"
    "   SELECT queue, kind, minute, pg_backend_pid(), sum(n) FROM moves"
    "   GROUP BY queue, kind, minute HAVING sum(n) <> 0"
    "   ON CONFLICT (queue, kind, minute, shard) DO UPDATE SET n = pq_counters.n + excluded.n)"
)
_THIS_MINUTE = "CAST(floor(:now / 60) AS BIGINT)"
_INSERT = (
    "INSERT INTO pq_jobs (queue, payload, encoding, status, priority, max_attempts,"
    " available_at, dedup_key, created_at, updated_at)"
    " VALUES (:queue, :payload, :encoding, 'ready', :priority, :max_attempts,"
    " :now + :delay, :dedup_key, :now, :now)"
)
_INSERTED = (
    " moves AS (SELECT queue, 'ready' AS kind, CAST(0 AS BIGINT) AS minute, 1 AS n FROM job),"
    + _COUNTED
)
_INSERT_ONE = (
    f"WITH job AS ({_INSERT} RETURNING id, queue),{_INSERTED}"
    f" SELECT id FROM job WHERE {_WAKE_ONE} >= 0"
)
_INSERT_DEDUP = (
    f"WITH job AS ({_INSERT} ON CONFLICT (queue, dedup_key) WHERE dedup_key IS NOT NULL"
    f"   AND status IN ('ready', 'in_progress') DO NOTHING RETURNING id, queue),{_INSERTED}"
    f" SELECT id FROM job WHERE {_WAKE_ONE} >= 0"
    " UNION ALL"
    " SELECT id FROM pq_jobs WHERE queue = :queue AND dedup_key = :dedup_key"
    " AND status IN ('ready', 'in_progress') AND NOT EXISTS (SELECT 1 FROM job)"
)
_INSERT_MANY = (
    "WITH job AS (INSERT INTO pq_jobs (queue, payload, encoding, status, priority, max_attempts,"
    " available_at, created_at, updated_at)"
    " SELECT :queue, t.payload, t.encoding, 'ready', :priority, :max_attempts,"
    " :now + :delay, :now, :now"
    " FROM unnest(CAST(:payloads AS bytea[]), CAST(:encodings AS text[])) WITH ORDINALITY"
    "   AS t (payload, encoding, ord) ORDER BY t.ord"
    f" RETURNING id, queue),{_INSERTED}"
    f" SELECT id FROM job WHERE {_WAKE_ONE} >= 0"
)
# The claims to ack, each locked as it is now, so the status it leaves is the one counted.
_ACKED = (
    " old AS (SELECT j.id, j.token, j.queue, j.status FROM pq_jobs j JOIN a ON a.id = j.id"
    "   WHERE j.token = a.token AND j.status <> 'done' FOR UPDATE OF j),"
    " acked AS (UPDATE pq_jobs j SET status = 'done', updated_at = :now, lease_expires_at = NULL"
    "   FROM old WHERE j.id = old.id RETURNING old.id, old.token, old.queue, old.status),"
)
_ACK_MOVES = (
    " SELECT queue, status, CAST(0 AS BIGINT), -1 FROM acked"
    " UNION ALL SELECT queue, 'done', 0, 1 FROM acked"
    f" UNION ALL SELECT queue, 'done', {_THIS_MINUTE}, 1 FROM acked"
)
_ACK_OUTCOME = (
    "CASE WHEN (a.id, a.token) IN (SELECT id, token FROM acked) THEN 'changed'"
    " WHEN j.id IS NULL THEN 'missing'"
    " WHEN j.token IS DISTINCT FROM a.token THEN 'lost' ELSE 'already' END"
)
_PICK_AND_CLAIM = (
    " picked AS (SELECT id FROM pq_jobs"
    "   WHERE queue = :queue AND status = 'ready' AND available_at <= :now"
    "   AND id <> ALL (CAST(:ack_ids AS bigint[]))"
    "   AND NOT EXISTS (SELECT 1 FROM pq_queues WHERE name = :queue AND paused)"
    "   ORDER BY priority DESC, available_at, id LIMIT :limit FOR UPDATE SKIP LOCKED),"
    " claimed AS (UPDATE pq_jobs j SET status = 'in_progress', attempts = j.attempts + 1,"
    "   token = :token, worker = :worker, updated_at = :now, claimed_at = :now,"
    f"   lease_expires_at = :now + {_CAPPED}"
    f"   FROM picked WHERE j.id = picked.id RETURNING {_J_COLS}),"
)
_CLAIM_MOVES = (
    " SELECT queue, 'ready', CAST(0 AS BIGINT), -1 FROM claimed"
    " UNION ALL SELECT queue, 'in_progress', 0, 1 FROM claimed"
)
# The common ack: a claim still held by its own token. Anything else (a late ack, a job taken
# back or settled meanwhile) goes the long way, `_COMPLETE`, with its outcome worked out.
_HELD_ACKED = (
    " acked AS (UPDATE pq_jobs j SET status = 'done', updated_at = :now, lease_expires_at = NULL"
    "   FROM a WHERE j.id = a.id AND j.token = a.token AND j.status = 'in_progress'"
    "   RETURNING j.id, j.token, j.queue),"
)
_HELD_ACK_MOVES = (
    " SELECT acked.queue, v.kind, v.minute, v.n FROM acked, (VALUES"
    f"   ('in_progress', CAST(0 AS BIGINT), -1), ('done', 0, 1), ('done', {_THIS_MINUTE}, 1))"
    "   AS v (kind, minute, n)"
)
_CLAIM = (
    f"WITH {_PICK_AND_CLAIM}"
    f" moves (queue, kind, minute, n) AS ({_CLAIM_MOVES}),{_COUNTED}"
    f" SELECT 'job', {_COLS} FROM claimed"
)
_CLAIM_ACK = (
    "WITH a AS (SELECT * FROM unnest(CAST(:ack_ids AS bigint[]), CAST(:ack_tokens AS text[]))"
    "   AS a (id, token)),"
    f"{_HELD_ACKED}{_PICK_AND_CLAIM}"
    f" moves (queue, kind, minute, n) AS ({_HELD_ACK_MOVES} UNION ALL {_CLAIM_MOVES}),"
    f"{_COUNTED}"
    f" SELECT 'job', {_COLS} FROM claimed"
    " UNION ALL"
    " SELECT 'ack', id, NULL, NULL, NULL, token,"
    "   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM acked"
)
_COMPLETE_HELD = (
    "WITH a AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS text[]))"
    "   AS a (id, token)),"
    f"{_HELD_ACKED}"
    f" moves (queue, kind, minute, n) AS ({_HELD_ACK_MOVES}),{_COUNTED}"
    " SELECT id, token FROM acked"
)
_COMPLETE = (
    "WITH a AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS text[]))"
    "   WITH ORDINALITY AS a (id, token, ord)),"
    f"{_ACKED}"
    f" moves (queue, kind, minute, n) AS ({_ACK_MOVES}),{_COUNTED}"
    f" SELECT a.ord, {_ACK_OUTCOME} FROM a LEFT JOIN pq_jobs j ON j.id = a.id"
)
_FAIL = (
    "WITH job AS (UPDATE pq_jobs SET status = :status, available_at = :now + :retry_in,"
    "   last_error = :error, error_sig = :sig, updated_at = :now, lease_expires_at = NULL"
    "   WHERE id = :id AND token = :token AND status = 'in_progress'"
    "   RETURNING id, queue, status, attempts, max_attempts),"
    " history AS (INSERT INTO pq_history (job_id, at, kind, actor, detail)"
    "   SELECT id, :now, :kind, :actor,"
    "   'attempt ' || attempts || '/' || max_attempts || ': ' || coalesce(:error, 'failed')"
    "   FROM job),"
    " moves (queue, kind, minute, n) AS ("
    "   SELECT queue, 'in_progress', CAST(0 AS BIGINT), -1 FROM job"
    "   UNION ALL SELECT queue, status, 0, 1 FROM job"
    f"   UNION ALL SELECT queue, 'failed', {_THIS_MINUTE}, 1 FROM job),"
    f"{_COUNTED},"
    " woken AS (SELECT pg_notify(pq_channel(queue), '') FROM job WHERE status = 'ready')"
    " SELECT 'changed', status FROM job WHERE (SELECT count(*) FROM woken) >= 0"
    " UNION ALL"
    " SELECT CASE WHEN token IS DISTINCT FROM :token THEN 'lost' ELSE 'already' END, status"
    " FROM pq_jobs WHERE id = :id AND NOT EXISTS (SELECT 1 FROM job)"
)
_EXTEND = (
    "WITH job AS (UPDATE pq_jobs SET lease_expires_at = :now + " + _CAPPED + ", updated_at = :now"
    "   WHERE id = :id AND token = :token AND status = 'in_progress'"
    "   RETURNING updated_at, lease_expires_at)"
    " SELECT 'changed', updated_at, lease_expires_at FROM job"
    " UNION ALL"
    " SELECT CASE WHEN token IS DISTINCT FROM :token THEN 'lost' ELSE 'already' END, NULL, NULL"
    " FROM pq_jobs WHERE id = :id AND NOT EXISTS (SELECT 1 FROM job)"
)
_RELEASE = (
    "WITH job AS (UPDATE pq_jobs SET status = 'ready', available_at = :now, updated_at = :now,"
    "   lease_expires_at = NULL, attempts = greatest(attempts - 1, 0)"
    "   WHERE id = :id AND token = :token AND status = 'in_progress' RETURNING id, queue),"
    " moves (queue, kind, minute, n) AS ("
    "   SELECT queue, 'in_progress', CAST(0 AS BIGINT), -1 FROM job"
    "   UNION ALL SELECT queue, 'ready', 0, 1 FROM job),"
    f"{_COUNTED}"
    f" SELECT 'changed' FROM job WHERE {_WAKE_ONE} >= 0"
    " UNION ALL"
    " SELECT CASE WHEN token IS DISTINCT FROM :token THEN 'lost' ELSE 'already' END"
    " FROM pq_jobs WHERE id = :id AND NOT EXISTS (SELECT 1 FROM job)"
)


def _bytes(payload: str | bytes) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


class PostgresStore(PostgresPlans):
    """A pq store in a PostgreSQL database, used synchronously: one connection per process and
    thread, in autocommit mode (a one-statement call is its own transaction)."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        self.target = Target(url)
        self.location = self.target.location
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                f"{self.location}: the PostgreSQL backend needs psycopg: install the "
                "'postgres' extra"
            ) from None
        self._psycopg = psycopg
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._orphans: list[Any] = []
        self._opened = False
        prepare(self, create)
        self._opened = True

    # -- connections ---------------------------------------------------------------------------

    def _connection(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            if sound(conn, bool(local.listening)):
                return conn
            conn.close()
        if conn is not None and local.pid != os.getpid():
            self._orphans.append(conn)  # the parent's socket: leave it alone
        local.conn = None
        try:
            conn = self._psycopg.connect(self.target.conninfo, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as exc:
            raise self._connect_error(exc) from None
        watch_for_end(conn)
        try:
            cur = conn.execute(session_setup(self))
            while cur.description is None and cur.nextset():
                pass  # past the SETs, to the schema in use
            local.schema = cur.fetchone()[0]
        except self._psycopg.Error as exc:
            conn.close()
            raise from_postgres(exc, self.location) from None
        local.conn, local.pid, local.listening = conn, os.getpid(), None
        return conn

    def _connect_error(self, exc: Exception) -> Exception:
        error = from_postgres(exc, self.location)
        if isinstance(error, ConnectionLost) and not self._opened:
            text = redact(" ".join(str(exc).split()))[:300]
            return StoreError(f"{self.location}: cannot reach the database ({text})")
        return error

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def _dropped(self, conn: Any, exc: Exception) -> Exception:
        """The QueueError for a failed call; a connection that is no longer sound is closed,
        so the next call opens a new one."""
        error = from_postgres(exc, self.location)
        if isinstance(error, ConnectionLost) or conn.broken or conn.closed:
            try:
                conn.close()
            except Exception:
                pass
            self._local.conn = None
            if not isinstance(error, ConnectionLost):
                error = ConnectionLost(f"{self.location}: the connection was lost ({error})")
        return error

    # -- running plans -------------------------------------------------------------------------

    def _run(self, op: Op, plan: Plan[T]) -> T:
        if op.write and self.read_only:
            plan.close()
            raise StoreReadOnly(f"{self.location}: opened read-only; this change is refused")
        conn = self._connection()
        psycopg = self._psycopg

        def execute(stmt: Stmt) -> list[tuple]:
            cur = conn.execute(translate(stmt.sql), stmt.params, prepare=None)
            return cur.fetchall() if cur.description is not None else []

        depth = getattr(self._local, "depth", 0)
        try:
            if depth:
                # Called while another plan runs on this connection (from take_back's
                # decide): a transaction inside that one, undone alone if it fails.
                begin, commit, undo = NESTED
            elif op.single:
                begin, commit, undo = None, None, ()
            elif op.write:
                begin, commit, undo = "BEGIN", "COMMIT", ("ROLLBACK",)
            else:
                begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                commit, undo = "COMMIT", ("ROLLBACK",)
            if begin:
                conn.execute(begin)
            self._local.depth = depth + 1 if begin else depth  # inside a transaction
            try:
                result = drive(plan, execute)
            except BaseException:
                if not conn.broken and not conn.closed:
                    try:
                        for statement in undo:
                            conn.execute(statement)
                    except psycopg.Error:
                        pass
                raise
            finally:
                self._local.depth = depth
            if commit:
                conn.execute(commit)
            return result
        except psycopg.Error as exc:
            raise self._dropped(conn, exc) from None

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, queue: str, timeout: float) -> None:
        conn = self._connection()
        wanted = channel(self._local.schema, queue)
        try:
            if self._local.listening != wanted:
                if self._local.listening:
                    conn.execute(f'UNLISTEN "{self._local.listening}"')
                conn.execute(f'LISTEN "{wanted}"')
                self._local.listening = wanted
                return  # the caller looks once more before it sleeps
            for _note in conn.notifies(timeout=timeout, stop_after=1):
                break
            for _note in conn.notifies(timeout=0):  # several wake-ups are one
                pass
        except self._psycopg.Error as exc:
            raise self._dropped(conn, exc) from None

    def quiet(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None or not getattr(self._local, "listening", None) or conn.closed:
            return
        try:
            conn.execute("UNLISTEN *")
            for _note in conn.notifies(timeout=0):  # what arrived meanwhile is not for anyone
                pass
        except self._psycopg.Error as exc:
            raise self._dropped(conn, exc) from None
        finally:
            self._local.listening = None

    # -- housekeeping --------------------------------------------------------------------------

    def maintain(self, event_retention: float, worker_retention: float) -> bool:
        self._tidy(event_retention, worker_retention)
        self._fold_counters()
        return False  # PostgreSQL's own autovacuum and checkpoints keep it bounded


def sound(conn: Any, listening: bool = False) -> bool:
    """Whether an idle connection can take the next call. A server that ended it meanwhile
    (a restart, pg_terminate_backend) has said so on the socket: an idle connection that is
    not listening has nothing else to say, so anything waiting there means it is over (the
    connection is replaced, not used). A listening one may have notifications waiting: those
    are read, and the connection is kept unless the socket has reached its end."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if not readable:
            return not getattr(conn, "pq_ended", False)
        if not listening:
            return False
        for _ in range(3):  # an error message first, then the end of the connection
            conn.pgconn.consume_input()  # notifications stay queued for the next read
            conn.pgconn.is_busy()  # parses what came: a FATAL goes to `watch_for_end`
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
            if not readable:
                break
    except Exception:  # the socket or the connection is gone
        return False
    # The server's FATAL comes a moment before the end of the connection: either says so.
    return conn.pgconn.status == 0 and not getattr(conn, "pq_ended", False)  # CONNECTION_OK


def watch_for_end(conn: Any) -> None:
    """Note on the connection when the server says it is ending it (a FATAL message, as
    pg_terminate_backend or a shutdown sends while the connection is idle), for `sound`."""
    ref = weakref.ref(conn)

    def noted(diag: Any) -> None:
        held = ref()
        if held is not None and diag.severity_nonlocalized in ("FATAL", "PANIC"):
            held.pq_ended = True

    conn.add_notice_handler(noted)


def session_setup(store: PostgresPlans) -> str:
    """What every new connection runs first (one round trip): the lock timeout, the store's
    schema, read-only mode; it answers with the schema in use."""
    parts = [f"SET lock_timeout = {int(store.busy_timeout * 1000)}"]  # type: ignore[attr-defined]
    # pq's statements are prepared after a few uses (psycopg); each is an index walk whatever
    # its values, so one generic plan serves: no planning on every call (half a claim's cost).
    parts.append("SET plan_cache_mode = force_generic_plan")
    schema = store.target.schema  # type: ignore[attr-defined]
    if schema is not None:
        parts.append(f"SET search_path TO {_ident(schema)}")
    if store.read_only:
        parts.append("SET default_transaction_read_only = on")
    parts.append("SELECT current_schema()")
    return "; ".join(parts)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def prepare(store: PostgresStore, create: bool) -> None:
    """Create or upgrade the store's tables (one migrator at a time), or refuse it."""
    conn = store._connection()
    psycopg = store._psycopg
    location = store.location
    try:
        schema = store.target.schema
        if schema is not None:
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if not exists:
                if not create or store.read_only:
                    raise StoreNotFound(f"{location}: no such store (schema {schema!r})")
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
                store.close()
                conn = store._connection()
        [(found,)] = conn.execute("SELECT to_regclass('pq_meta') IS NOT NULL").fetchall()
        version = 0
        if found:
            version = int(
                conn.execute("SELECT value FROM pq_meta WHERE key = 'version'").fetchone()[0]
            )
        elif not create:
            raise StoreNotFound(f"{location}: no such store (no pq tables here)")
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{location}: store format version {version} is newer than this pq "
                f"understands (up to {SCHEMA_VERSION}); upgrade pq to open it"
            )
        if version == SCHEMA_VERSION:
            return
        if store.read_only:
            raise StoreReadOnly(f"{location}: store needs creating or upgrading first")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(7073)")  # the others find the work done
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
    except psycopg.Error as exc:
        raise store._dropped(conn, exc) from None


class AsyncPostgresStore(PostgresPlans):
    """The same store for asyncio, on psycopg's async connections: the very same plans, each
    call awaited on a connection of a small pool; a waiting get() is woken by LISTEN on a
    connection of its own per queue. Create it with `await AsyncPostgresStore.open(...)`."""

    POOL = 4

    def __init__(self, url: str, *, busy_timeout: float = 30.0, read_only: bool = False) -> None:
        import psycopg

        self._psycopg = psycopg
        self.target = Target(url)
        self.location = self.target.location
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._idle: list[Any] = []
        self._made = 0
        self._free: Any = None  # an asyncio.Condition, made on the running loop
        self._listeners: dict[str, Any] = {}  # channel → (connection, reader task, event)
        self._schema: str | None = None

    @classmethod
    async def open(
        cls, url: str, *, busy_timeout: float = 30.0, read_only: bool = False, create: bool = True
    ) -> AsyncPostgresStore:
        import asyncio

        # Creating or upgrading the tables is done once, by the synchronous store, off the loop.
        def prepare_tables() -> None:
            PostgresStore(
                url, busy_timeout=busy_timeout, read_only=read_only, create=create
            ).close()

        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                f"{Target(url).location}: the PostgreSQL backend needs psycopg: install the "
                "'postgres' extra"
            ) from None
        await asyncio.to_thread(prepare_tables)
        return cls(url, busy_timeout=busy_timeout, read_only=read_only)

    async def _connect(self) -> Any:
        try:
            conn = await self._psycopg.AsyncConnection.connect(
                self.target.conninfo, autocommit=True, connect_timeout=10
            )
        except self._psycopg.Error as exc:
            raise from_postgres(exc, self.location) from None
        watch_for_end(conn)
        try:
            cur = await conn.execute(session_setup(self))
            while cur.description is None and cur.nextset():
                pass
            self._schema = (await cur.fetchone())[0]
        except self._psycopg.Error as exc:
            await conn.close()
            raise from_postgres(exc, self.location) from None
        return conn

    async def _acquire(self) -> Any:
        import asyncio

        if self._free is None:
            self._free = asyncio.Condition()
        async with self._free:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if sound(conn):
                        return conn
                    self._made -= 1
                    await conn.close()
                if self._made < self.POOL:
                    self._made += 1
                    break
                await self._free.wait()
        try:
            return await self._connect()
        except BaseException:
            async with self._free:
                self._made -= 1
                self._free.notify()
            raise

    async def _release(self, conn: Any) -> None:
        async with self._free:
            if conn.closed or conn.broken:
                self._made -= 1
            else:
                self._idle.append(conn)
            self._free.notify()

    async def _run(self, op: Op, plan: Plan[T]) -> T:
        if op.write and self.read_only:
            plan.close()
            raise StoreReadOnly(f"{self.location}: opened read-only; this change is refused")
        conn = await self._acquire()
        try:
            return await self._run_on(conn, op, plan)
        except self._psycopg.Error as exc:
            error = from_postgres(exc, self.location)
            if isinstance(error, ConnectionLost) or conn.broken or conn.closed:
                await conn.close()
                if not isinstance(error, ConnectionLost):
                    error = ConnectionLost(f"{self.location}: the connection was lost ({error})")
            raise error from None
        finally:
            await self._release(conn)

    async def _run_on(self, conn: Any, op: Op, plan: Plan[T]) -> T:
        async def execute(stmt: Stmt) -> list[tuple]:
            cur = await conn.execute(translate(stmt.sql), stmt.params)
            return await cur.fetchall() if cur.description is not None else []

        async def drive_async() -> T:
            return await steps.run_async(plan, execute)

        if op.single:
            return await drive_async()
        await conn.execute(
            "BEGIN" if op.write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )
        try:
            result = await drive_async()
        except BaseException:
            if not conn.broken and not conn.closed:
                try:
                    await conn.execute("ROLLBACK")
                except self._psycopg.Error:
                    pass
            raise
        await conn.execute("COMMIT")
        return result

    # -- waiting -------------------------------------------------------------------------------

    async def wait(self, queue: str, timeout: float) -> None:
        import asyncio

        if self._schema is None:
            await self._release(await self._acquire())  # learns the schema in use
        wanted = channel(self._schema or "public", queue)
        listener = self._listeners.get(wanted)
        if listener is None or listener[1].done():
            await self._listen(wanted)
            return  # the caller looks once more before it sleeps
        _conn, _task, woken = listener
        try:
            await asyncio.wait_for(woken.wait(), timeout)
        except TimeoutError:
            return
        woken.clear()

    async def _listen(self, wanted: str) -> None:
        import asyncio

        conn = await self._connect()
        try:
            await conn.execute(f'LISTEN "{wanted}"')
        except self._psycopg.Error as exc:
            await conn.close()
            raise from_postgres(exc, self.location) from None
        woken = asyncio.Event()

        async def read() -> None:  # hands each wake-up on; nothing piles up
            try:
                async for _note in conn.notifies():
                    woken.set()
            except self._psycopg.Error:
                woken.set()  # the next wait listens anew
            finally:
                await conn.close()

        self._listeners[wanted] = (conn, asyncio.get_running_loop().create_task(read()), woken)

    async def quiet(self) -> None:
        pass  # a listener's reader takes every note as it comes: nothing piles up

    async def maintain(self, event_retention: float, worker_retention: float) -> bool:
        await self._tidy(event_retention, worker_retention)
        await self._fold_counters()
        return False

    def close(self) -> None:
        pass  # connections belong to the pool: aclose() ends them

    async def aclose(self) -> None:
        import asyncio

        for _conn, task, _woken in self._listeners.values():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, self._psycopg.Error):
                pass
        self._listeners.clear()
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        self._made = 0
