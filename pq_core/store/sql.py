"""The SQL both backends share, and the machinery that runs it.

Every store operation is written once, as a *plan*: a generator that yields the statements it
needs (`Stmt`) and receives each one's rows back. A runner executes plans: the SQLite store and
the PostgreSQL store run them on their own connections, synchronously, and the asynchronous
PostgreSQL store runs the very same plans on psycopg's async connection. So the SQL of an
operation exists once, whichever way it is run.

`@write` and `@read` turn a plan into a store method: calling `store.requeue(...)` runs the
plan as one transaction (a write takes the write lock up front) and returns what the plan
returns. `single=True` says the plan is one statement, which PostgreSQL then runs without a
transaction block: one round trip.

Statements are written in SQLite's dialect with named parameters (`:name`); `:now` is the
store's clock. The PostgreSQL store translates the few idioms that differ (see
`postgres.translate`). Operations whose best form differs between the two (the hot paths:
insert, claim, complete, fail, extend, release) live in each backend, next to its schema.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from pq_core import steps
from pq_core.errors import InvalidValue, ItemNotFound
from pq_core.model import EventKind, Status, duration_text, error_signature
from pq_core.store.base import (
    COLUMNS,
    Decide,
    ErrorRow,
    EventRow,
    Held,
    JobFilter,
    JobRow,
    NewJob,
    Outcome,
    StoreStats,
    Verdict,
    WorkerRow,
    WorkersView,
)

T = TypeVar("T")

COLS = ", ".join(COLUMNS)
EVENT_JOB_IDS_KEPT = 1000  # how many ids an event row lists; the link table has all of them
LIVE = ("ready", "in_progress")


class Stmt(NamedTuple):
    """One statement of a plan. With `many`, it runs once per parameter set and yields no rows
    (sets that are tuples bind by position, as they are)."""

    sql: str
    params: Mapping[str, Any] = {}
    many: Sequence[Mapping[str, Any] | tuple] | None = None


Plan = Generator[Stmt, list[tuple], T]


class Op:
    """A store operation: a plan, and how to run it (read or write, one statement or more)."""

    def __init__(self, plan: Callable[..., Plan[Any]], write: bool, single: bool) -> None:
        self.plan = plan
        self.write = write
        self.single = single
        self.__doc__ = plan.__doc__
        self.__name__ = plan.__name__

    def __get__(self, store: Any, owner: type | None = None) -> Any:
        if store is None:
            return self
        op, plan, run = self, self.plan, store._run

        def call(*args: Any, **kwargs: Any) -> Any:
            return run(op, plan(store, *args, **kwargs))

        call.__name__ = self.__name__
        call.__doc__ = self.__doc__
        store.__dict__[self.__name__] = call  # made once per store: later lookups find it there
        return call


def write(plan: Callable[..., Plan[Any]] | None = None, *, single: bool = False) -> Any:
    """A plan that changes the store: run as one transaction holding the write lock."""
    if plan is None:
        return lambda p: Op(p, True, single)
    return Op(plan, True, single)


def read(plan: Callable[..., Plan[Any]] | None = None, *, single: bool = False) -> Any:
    """A plan that only reads: its statements see one consistent state of the store."""
    if plan is None:
        return lambda p: Op(p, False, single)
    return Op(plan, False, single)


def drive(plan: Plan[T], execute: Callable[[Stmt], list[tuple]]) -> T:
    """Run a plan synchronously: each statement through `execute`, its rows sent back."""
    return steps.run(plan, execute)


class SQLStore:
    """What both backends share: the operator's calls, events, workers and reads.

    A backend adds its connection handling and runner (`_run`), its schema, and the hot paths.
    Hooks it may override: `LOCK` (appended to a SELECT that picks rows to change), `_search`
    (the text-search condition), `_wake` (tell waiting consumers of these queues)."""

    location: str
    read_only: bool
    LOCK = ""  # appended to a SELECT of rows about to change
    SKIP_LOCKED = ""  # … of rows about to change, where others may skip them

    def _run(self, op: Op, plan: Plan[T]) -> T:
        raise NotImplementedError

    def _wake(self, queues: Sequence[str]) -> Plan[None]:
        """Wake consumers waiting on these queues (nothing to do where they poll)."""
        return
        yield

    def _search(self) -> str:
        """A condition that is true when a job mentions `:pattern` (a LIKE pattern, escaped
        with backslash) in its payload, error or worker, or has the id `:search_id`."""
        raise NotImplementedError

    # -- events --------------------------------------------------------------------------------

    def _record(
        self,
        queue: str,
        kind: str,
        actor: str,
        detail: str,
        job_ids: Sequence[int],
        count: int | None = None,
    ) -> Plan[None]:
        listed = "[" + ",".join(str(i) for i in job_ids[:EVENT_JOB_IDS_KEPT]) + "]"
        [(event_id,)] = yield Stmt(
            "INSERT INTO pq_events (at, queue, kind, actor, count, detail, job_ids)"
            " VALUES (:now, :queue, :kind, :actor, :count, :detail, :listed) RETURNING id",
            {
                "queue": queue,
                "kind": kind,
                "actor": actor,
                "count": len(job_ids) if count is None else count,
                "detail": detail,
                "listed": listed,
            },
        )
        if job_ids:
            yield Stmt(
                "INSERT INTO pq_event_jobs (job_id, event_id)"
                " SELECT value, :event FROM json_each(:ids) WHERE true ON CONFLICT DO NOTHING",
                {"event": event_id, "ids": list(job_ids)},
            )

    @read(single=True)
    def events(self, queue: str | None, limit: int, offset: int) -> Plan[list[EventRow]]:
        where = "" if queue is None else " WHERE queue = :queue"
        rows = yield Stmt(
            f"SELECT id, at, queue, kind, actor, count, detail, job_ids FROM pq_events{where}"
            " ORDER BY id DESC LIMIT :limit OFFSET :offset",
            {"queue": queue, "limit": limit, "offset": offset},
        )
        return [EventRow(*r) for r in rows]

    @read
    def history(self, job_id: int) -> Plan[list[EventRow]]:
        linked = yield Stmt(
            "SELECT e.id, e.at, e.queue, e.kind, e.actor, e.count, e.detail, e.job_ids"
            " FROM pq_event_jobs j JOIN pq_events e ON e.id = j.event_id WHERE j.job_id = :id",
            {"id": job_id},
        )
        own = yield Stmt(
            "SELECT h.id, h.at, j.queue, h.kind, h.actor, 1, h.detail, '[' || h.job_id || ']'"
            " FROM pq_history h JOIN pq_jobs j ON j.id = h.job_id WHERE h.job_id = :id",
            {"id": job_id},
        )
        rows = [EventRow(*r) for r in linked] + [EventRow(*r) for r in own]
        return sorted(rows, key=lambda e: (e.at, e.id))

    # -- operator ------------------------------------------------------------------------------

    def _pick(self, ids: Sequence[int], only_queue: str | None) -> Plan[list[tuple]]:
        """(id, queue, status, dedup_key) of these jobs, locked; with `only_queue`, refuse ids
        of another queue before anything changes."""
        rows = yield Stmt(
            "SELECT id, queue, status, dedup_key FROM pq_jobs"
            " WHERE id IN (SELECT value FROM json_each(:ids))" + self.LOCK,
            {"ids": list(ids)},
        )
        if only_queue is not None:
            strangers = sorted((r[0], r[1]) for r in rows if r[1] != only_queue)
            if strangers:
                shown = ", ".join(f"{i} (queue {q!r})" for i, q in strangers[:5])
                raise ItemNotFound(
                    f"job(s) {shown} not in queue {only_queue!r}; nothing was changed"
                )
        return sorted(rows)

    def _revive(self, rows: Sequence[tuple]) -> Plan[None]:
        """Jobs about to become live again (ready) give up their dedup_key when a live job of
        their queue holds it now; among several with one key, the newest keeps it."""
        kept: set[tuple[str, str]] = set()
        keyed = sorted((r for r in rows if r[3] is not None and r[2] not in LIVE), reverse=True)
        for job_id, queue, _status, key in keyed:
            taken = (queue, key) in kept or bool(
                (
                    yield Stmt(
                        "SELECT 1 FROM pq_jobs WHERE queue = :queue AND dedup_key = :key"
                        " AND status IN ('ready', 'in_progress') AND id <> :id",
                        {"queue": queue, "key": key, "id": job_id},
                    )
                )
            )
            if taken:
                yield Stmt("UPDATE pq_jobs SET dedup_key = NULL WHERE id = :id", {"id": job_id})
            else:
                kept.add((queue, key))

    @write
    def requeue(
        self, ids: Sequence[int], reset_attempts: bool, actor: str, only_queue: str | None
    ) -> Plan[list[int]]:
        rows = yield from self._pick(ids, only_queue)
        targets = [r for r in rows if r[2] != Status.READY]
        if not targets:
            return []
        yield from self._revive(targets)
        changed = yield Stmt(
            "UPDATE pq_jobs SET status = 'ready', available_at = :now, updated_at = :now,"
            " attempts = CASE WHEN :reset THEN 0 ELSE attempts END,"
            " lease_expires_at = NULL, error_sig = NULL"
            " WHERE id IN (SELECT value FROM json_each(:ids)) RETURNING id, queue",
            {"ids": [r[0] for r in targets], "reset": reset_attempts},
        )
        was = {r[0]: r[2] for r in targets}
        yield from self._moved([(queue, was[i], Status.READY) for i, queue in changed])
        groups = _by_queue(changed)
        for queue, job_ids in groups.items():
            detail = f"requeued {len(job_ids)} job(s): {id_text(job_ids)}"
            yield from self._record(queue, EventKind.REQUEUE, actor, detail, job_ids)
        yield from self._wake(list(groups))
        return sorted(i for i, _ in changed)

    @write
    def delete(self, ids: Sequence[int], actor: str, only_queue: str | None) -> Plan[list[int]]:
        rows = yield from self._pick(ids, only_queue)
        if not rows:
            return []
        groups = _by_queue([(r[0], r[1]) for r in rows])
        # Recorded first, so the event lists the jobs; their links to it go with them.
        for queue, job_ids in groups.items():
            detail = f"deleted {len(job_ids)} job(s): {id_text(job_ids)}"
            yield from self._record(queue, EventKind.DELETE, actor, detail, job_ids)
        yield from self._remove([r[:3] for r in rows])
        return [r[0] for r in rows]

    def _remove(self, rows: Sequence[tuple]) -> Plan[None]:
        """Delete jobs, (id, queue, status) each, and what refers only to them (history,
        links to events)."""
        args = {"ids": [r[0] for r in rows]}
        yield Stmt("DELETE FROM pq_jobs WHERE id IN (SELECT value FROM json_each(:ids))", args)
        yield from self._moved([(queue, status, None) for _id, queue, status in rows])
        yield Stmt(
            "DELETE FROM pq_event_jobs WHERE job_id IN (SELECT value FROM json_each(:ids))", args
        )
        yield Stmt(
            "DELETE FROM pq_history WHERE job_id IN (SELECT value FROM json_each(:ids))", args
        )

    @write
    def run_now(self, ids: Sequence[int], actor: str, only_queue: str | None) -> Plan[list[int]]:
        rows = yield from self._pick(ids, only_queue)
        if not rows:
            return []
        changed = yield Stmt(
            "UPDATE pq_jobs SET available_at = :now, updated_at = :now"
            " WHERE id IN (SELECT value FROM json_each(:ids))"
            " AND status = 'ready' AND available_at > :now RETURNING id, queue",
            {"ids": [r[0] for r in rows]},
        )
        groups = _by_queue(changed)
        for queue, job_ids in groups.items():
            detail = f"ran {len(job_ids)} scheduled job(s) now: {id_text(job_ids)}"
            yield from self._record(queue, EventKind.RUN_NOW, actor, detail, job_ids)
        yield from self._wake(list(groups))
        return sorted(i for i, _ in changed)

    @write
    def purge(
        self, queue: str | None, status: str, older_than: float, limit: int, actor: str
    ) -> Plan[int]:
        queues = [queue] if queue is not None else (yield from self._queues_with(status))
        removed = 0
        for name in queues:
            gone = yield Stmt(
                "SELECT id FROM pq_jobs WHERE queue = :queue AND status = :status"
                " AND updated_at <= :now - :age"
                + _FINISHED.get(status, "")
                + " ORDER BY updated_at LIMIT :limit"
                + self.LOCK,
                {"queue": name, "status": status, "age": older_than, "limit": limit - removed},
            )
            if not gone:
                continue
            ids = [r[0] for r in gone]
            yield from self._remove([(i, name, status) for i in ids])
            detail = f"purged {len(ids)} {status} job(s) older than {duration_text(older_than)}"
            yield from self._record(name, EventKind.PURGE, actor, detail, [], len(ids))
            removed += len(ids)
            if removed >= limit:
                break
        return removed

    def _queues_with(self, status: str) -> Plan[list[str]]:
        rows = yield Stmt(
            "SELECT queue FROM pq_counters WHERE kind = :status AND minute = 0"
            " GROUP BY queue HAVING sum(n) > 0 ORDER BY queue",
            {"status": status},
        )
        return [r[0] for r in rows]

    @read
    def purge_count(self, queue: str | None, status: str, older_than: float) -> Plan[int]:
        queues = [queue] if queue is not None else (yield from self._queues_with(status))
        total = 0
        for name in queues:
            args = {"queue": name, "status": status, "age": older_than}
            if status not in _FINISHED:  # no index on their age: count them
                [(n,)] = yield Stmt(
                    "SELECT count(*) FROM pq_jobs WHERE queue = :queue AND status = :status"
                    " AND updated_at <= :now - :age",
                    args,
                )
                total += n
                continue
            # Count whichever side of the age boundary is smaller: the counter has the sum.
            [(all_,)] = yield Stmt(
                "SELECT coalesce(sum(n), 0) FROM pq_counters"
                " WHERE queue = :queue AND kind = :status AND minute = 0",
                args,
            )
            [(newer,)] = yield Stmt(
                "SELECT count(*) FROM (SELECT 1 FROM pq_jobs WHERE queue = :queue"
                " AND status = :status AND updated_at > :now - :age"
                + _FINISHED[status]
                + " LIMIT :half) AS newer",
                {**args, "half": all_ // 2 + 1},
            )
            if newer <= all_ // 2:
                total += max(all_ - newer, 0)
                continue
            [(older,)] = yield Stmt(
                "SELECT count(*) FROM pq_jobs WHERE queue = :queue AND status = :status"
                " AND updated_at <= :now - :age" + _FINISHED[status],
                args,
            )
            total += older
        return total

    @write
    def set_status(self, job_id: int, status: str, actor: str) -> Plan[bool]:
        rows = yield from self._pick([job_id], None)
        if not rows:
            return False
        if status in LIVE:
            yield from self._revive(rows)
        # A job forced into progress is held by no claim: its lease ends now, so the manager's
        # next sweep puts it back instead of it waiting forever. One already in progress keeps
        # its claim.
        [(queue,)] = yield Stmt(
            "UPDATE pq_jobs SET status = :status, updated_at = :now, available_at = :now,"
            " lease_expires_at = CASE WHEN :status <> 'in_progress' THEN NULL"
            "   WHEN status = 'in_progress' THEN lease_expires_at ELSE :now END,"
            " claimed_at = CASE WHEN :status = 'in_progress' AND status <> 'in_progress'"
            "   THEN :now ELSE claimed_at END"
            " WHERE id = :id RETURNING queue",
            {"status": status, "id": job_id},
        )
        yield from self._moved([(queue, rows[0][2], status)])
        detail = f"job {job_id} set to {status}"
        yield from self._record(queue, f"set {status}", actor, detail, [job_id])
        if status == Status.READY:
            yield from self._wake([queue])
        return True

    @write
    def set_paused(self, queue: str, paused: bool, actor: str) -> Plan[bool]:
        if paused:
            changed = yield Stmt(
                "INSERT INTO pq_queues (name, paused, changed_at, changed_by)"
                " VALUES (:queue, :paused, :now, :actor)"
                " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                " changed_at = excluded.changed_at, changed_by = excluded.changed_by"
                " WHERE NOT pq_queues.paused RETURNING name",
                {"queue": queue, "paused": True, "actor": actor},
            )
        else:
            changed = yield Stmt(
                "UPDATE pq_queues SET paused = :paused, changed_at = :now, changed_by = :actor"
                " WHERE name = :queue AND paused RETURNING name",
                {"queue": queue, "paused": False, "actor": actor},
            )
        if not changed:
            return False
        kind = EventKind.PAUSE if paused else EventKind.RESUME
        verb = "paused: no job is handed out" if paused else "resumed"
        yield from self._record(queue, kind, actor, f"queue {queue!r} {verb}", [], 0)
        if not paused:
            yield from self._wake([queue])
        return True

    @read(single=True)
    def is_paused(self, queue: str) -> Plan[bool]:
        rows = yield Stmt(
            "SELECT 1 FROM pq_queues WHERE name = :queue AND paused", {"queue": queue}
        )
        return bool(rows)

    @read(single=True)
    def matching_ids(self, where: JobFilter, after: int, limit: int) -> Plan[list[int]]:
        clause, args = self._where(where)
        rows = yield Stmt(
            f"SELECT id FROM pq_jobs WHERE {clause} AND id > :after ORDER BY id LIMIT :limit",
            {**args, "after": after, "limit": limit},
        )
        return [r[0] for r in rows]

    # -- manager -------------------------------------------------------------------------------

    @write
    def take_back(self, gone: Sequence[str], decide: Decide, actor: str) -> Plan[list[Verdict]]:
        rows = yield Stmt(
            "SELECT id, queue, attempts, max_attempts, worker, claimed_at, lease_expires_at,"
            " token FROM pq_jobs WHERE status = 'in_progress'"
            " AND (lease_expires_at <= :now OR worker IN (SELECT value FROM json_each(:gone)))"
            " ORDER BY id" + self.SKIP_LOCKED,
            {"gone": list(gone)},
        )
        verdicts = decide([Held(*r) for r in rows])
        groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for v in verdicts:
            groups[(v.held.queue, v.reason, v.status)].append(v.held.id)
        failed: dict[str, int] = defaultdict(int)
        for (queue, reason, status), ids in sorted(groups.items()):
            error = f"taken back by the manager: {reason}"
            settled = yield Stmt(
                "UPDATE pq_jobs SET status = :status, available_at = :now, updated_at = :now,"
                " last_error = :error, error_sig = :sig, lease_expires_at = NULL"
                " WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'in_progress'"
                " RETURNING id",
                {"status": status, "error": error, "sig": error_signature(error), "ids": ids},
            )
            yield from self._moved([(queue, Status.IN_PROGRESS, status)] * len(settled))
            failed[queue] += len(ids)
            if status == Status.READY:
                detail = f"requeued {len(ids)} job(s): {reason}"
                yield from self._record(queue, EventKind.REQUEUE, actor, detail, ids)
            else:
                detail = f"dead-lettered {len(ids)} job(s) out of attempts: {reason}"
                yield from self._record(queue, EventKind.DEAD, actor, detail, ids)
        for queue, n in failed.items():
            yield from self._count(queue, "failed", n, per_minute=True)
        yield from self._wake([q for (q, _r, s) in groups if s == Status.READY])
        return verdicts

    def _count(self, queue: str, kind: str, n: int, per_minute: bool = False) -> Plan[None]:
        """Add n to a counter: jobs in status `kind`, or (per_minute) `kind` this minute."""
        raise NotImplementedError
        yield

    def _moved(self, moves: Sequence[tuple[str, str | None, str | None]]) -> Plan[None]:
        """Count jobs these statements moved, (queue, status before, status after; None for a
        job removed), where the backend does not count them by itself (SQLite's triggers do:
        nothing to do here)."""
        return
        yield

    @write(single=True)
    def set_lease_cap(self, seconds: float | None) -> Plan[None]:
        if seconds is None:
            yield Stmt("DELETE FROM pq_meta WHERE key = 'lease_cap'")
        else:
            yield Stmt(
                "INSERT INTO pq_meta (key, value) VALUES ('lease_cap', :value)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                {"value": repr(float(seconds))},
            )

    @write
    def _tidy(self, event_retention: float, worker_retention: float) -> Plan[None]:
        old = {"before": event_retention}
        yield Stmt(
            "DELETE FROM pq_event_jobs WHERE event_id IN"
            " (SELECT id FROM pq_events WHERE at < :now - :before)",
            old,
        )
        yield Stmt("DELETE FROM pq_events WHERE at < :now - :before", old)
        yield Stmt(
            "DELETE FROM pq_workers WHERE last_seen < :now - :before",
            {"before": worker_retention},
        )
        # Per-minute counters are shown for 30 minutes; keep a day of them.
        yield Stmt(
            "DELETE FROM pq_counters WHERE minute > 0"
            " AND minute < CAST(:now / 60 AS INTEGER) - 1440"
        )

    # -- reading -------------------------------------------------------------------------------

    @read
    def stats(self, minutes: int) -> Plan[StoreStats]:
        # One statement for the clock, the counters and the paused queues; one more for the
        # queues with ready jobs.
        found = yield Stmt(
            "SELECT 'now', NULL, NULL, NULL, :now"
            " UNION ALL"
            " SELECT 'counter', queue, kind, minute, sum(n) FROM pq_counters"
            " WHERE minute = 0 OR minute >= CAST(:now / 60 AS INTEGER) - :back"
            " GROUP BY queue, kind, minute"
            " UNION ALL"
            " SELECT 'paused', name, NULL, NULL, NULL FROM pq_queues WHERE paused",
            {"back": minutes},
        )
        now = 0.0
        counts: dict[tuple[str, str], int] = {}
        per_minute: dict[tuple[str, str, int], int] = {}
        paused = set()
        for what, queue, kind, minute, n in found:
            if what == "now":
                now = float(n)
            elif what == "paused":
                paused.add(queue)
            elif minute == 0:
                counts[(queue, kind)] = int(n)
            else:
                per_minute[(queue, kind, int(minute))] = int(n)
        ready = sorted(q for (q, s), n in counts.items() if s == Status.READY and n > 0)
        scheduled: dict[str, int] = {}
        oldest: dict[str, float] = {}
        if ready:
            # One statement for every queue with ready jobs: each part reads one index entry
            # (the oldest) or the few scheduled ones, never the ready jobs themselves.
            names = {f"q{i}": name for i, name in enumerate(ready)}
            values = ", ".join(f"(:{key})" for key in names)
            per_queue = yield Stmt(
                "SELECT q.column1,"
                " (SELECT count(*) FROM pq_jobs WHERE queue = q.column1 AND status = 'ready'"
                "   AND available_at > created_at AND available_at > :now),"
                " (SELECT created_at FROM pq_jobs WHERE queue = q.column1 AND status = 'ready'"
                "   ORDER BY id LIMIT 1)"
                f" FROM (VALUES {values}) AS q",
                names,
            )
            for queue, waiting, first in per_queue:
                scheduled[queue] = int(waiting)
                if first is not None:
                    oldest[queue] = float(first)
        return StoreStats(now, counts, scheduled, oldest, per_minute, frozenset(paused))

    def _where(self, where: JobFilter) -> tuple[str, dict[str, Any]]:
        """A WHERE clause (and its parameters) for a JobFilter."""
        parts, args = ["1 = 1"], {}
        if where.queue is not None:
            # A window of ids (a search's bounded read) is read from the primary key: the
            # listing index (queue, status, id) would walk every id of the queue for it.
            windowed = where.id_range is not None and not where.statuses
            parts.append("queue || '' = :queue" if windowed else "queue = :queue")
            args["queue"] = where.queue
        if where.statuses:
            names = [f":status{i}" for i in range(len(where.statuses))]
            parts.append(f"status IN ({', '.join(names)})")
            args.update({n[1:]: s for n, s in zip(names, where.statuses, strict=True)})
        if where.scheduled is not None:
            soon = "status = 'ready' AND available_at > created_at AND available_at > :now"
            parts.append(f"({soon})" if where.scheduled else f"NOT ({soon})")
        if where.error is not None:
            parts.append("error_sig = :error AND status IN ('ready', 'dead')")
            args["error"] = where.error
        if where.id_range is not None:
            parts.append("id BETWEEN :id_from AND :id_to")
            args["id_from"], args["id_to"] = where.id_range
        if where.search:
            text = check_search(where.search)
            parts.append(self._search())
            args["pattern"] = (
                "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            args["needle"] = text
            digits = text.strip()
            args["search_id"] = int(digits) if digits.isascii() and digits.isdigit() else -1
        return " AND ".join(parts), args

    @read(single=True)
    def count(self, where: JobFilter) -> Plan[int]:
        counted = (where.search, where.error, where.scheduled, where.id_range) == (None,) * 4
        if counted:
            clause = "minute = 0" + ("" if where.queue is None else " AND queue = :queue")
            rows = yield Stmt(
                f"SELECT kind, coalesce(sum(n), 0) FROM pq_counters WHERE {clause} GROUP BY kind",
                {"queue": where.queue},
            )
            return sum(int(n) for kind, n in rows if not where.statuses or kind in where.statuses)
        clause, args = self._where(where)
        [(n,)] = yield Stmt(f"SELECT count(*) FROM pq_jobs WHERE {clause}", args)
        return int(n)

    @read(single=True)
    def rows(
        self, where: JobFilter, limit: int, offset: int, newest_first: bool, after: int | None
    ) -> Plan[list[JobRow]]:
        clause, args = self._where(where)
        if where.scheduled:  # soonest first, read from the index of scheduled jobs
            order = "available_at, id" if newest_first else "available_at DESC, id DESC"
            key, later = "(available_at, id)", ">" if newest_first else "<"
            anchor = "(SELECT available_at, id FROM pq_jobs WHERE id = :after)"
        else:
            order = "id DESC" if newest_first else "id"
            key, later, anchor = "id", "<" if newest_first else ">", ":after"
        if after is not None:
            clause += f" AND {key} {later} {anchor}"
            args["after"] = after
        rows = yield Stmt(
            f"SELECT {COLS} FROM pq_jobs WHERE {clause} ORDER BY {order}"
            " LIMIT :limit OFFSET :offset",
            {**args, "limit": limit, "offset": offset},
        )
        return [self._job(r) for r in rows]

    @read(single=True)
    def row(self, job_id: int) -> Plan[JobRow | None]:
        rows = yield Stmt(f"SELECT {COLS} FROM pq_jobs WHERE id = :id", {"id": job_id})
        return self._job(rows[0]) if rows else None

    def _job(self, row: tuple) -> JobRow:
        return JobRow(*row)

    @read
    def errors(self, queue: str | None, limit: int) -> Plan[list[ErrorRow]]:
        where = "" if queue is None else " AND queue = :queue"
        groups = yield Stmt(
            "SELECT error_sig, count(*), sum(CASE WHEN status = 'dead' THEN 1 ELSE 0 END),"
            " max(updated_at), max(id) FROM pq_jobs"
            f" WHERE error_sig IS NOT NULL AND status IN ('ready', 'dead'){where}"
            " GROUP BY error_sig ORDER BY count(*) DESC, max(updated_at) DESC LIMIT :limit",
            {"queue": queue, "limit": limit},
        )
        out = []
        for signature, n, dead, newest, example_id in groups:
            queues = yield Stmt(
                "SELECT DISTINCT queue FROM pq_jobs WHERE error_sig = :sig"
                f" AND status IN ('ready', 'dead'){where} ORDER BY queue LIMIT 20",
                {"sig": signature, "queue": queue},
            )
            [(example,)] = yield Stmt(
                "SELECT last_error FROM pq_jobs WHERE id = :id", {"id": example_id}
            )
            out.append(
                ErrorRow(
                    signature, int(n), int(dead), float(newest), tuple(r[0] for r in queues),
                    example or signature,
                )
            )  # fmt: skip
        return out

    @read
    def check(self) -> Plan[list[str]]:
        problems = list((yield from self._integrity()))
        counted = yield Stmt(
            "SELECT queue, kind, sum(n) FROM pq_counters WHERE minute = 0 GROUP BY queue, kind"
        )
        actual = yield Stmt("SELECT queue, status, count(*) FROM pq_jobs GROUP BY queue, status")
        said = {(q, k): int(n) for q, k, n in counted}
        real = {(q, s): int(n) for q, s, n in actual}
        for key in sorted(set(said) | set(real)):
            if said.get(key, 0) != real.get(key, 0):
                problems.append(
                    f"counter for queue {key[0]!r} status {key[1]} says {said.get(key, 0)},"
                    f" the jobs say {real.get(key, 0)}"
                )
        return problems

    def _integrity(self) -> Plan[list[str]]:
        return []
        yield

    # -- workers -------------------------------------------------------------------------------

    @write(single=True)
    def register(self, worker: str, kind: str, queue: str, host: str, pid: int) -> Plan[None]:
        yield Stmt(
            "INSERT INTO pq_workers (id, kind, queue, host, pid, started_at, last_seen, stopped,"
            " done_recent) VALUES (:id, :kind, :queue, :host, :pid, :now, :now, :stopped, 0)"
            " ON CONFLICT (id, kind, queue) DO UPDATE SET last_seen = excluded.last_seen,"
            " stopped = excluded.stopped",
            {"id": worker, "kind": kind, "queue": queue, "host": host, "pid": pid,
             "stopped": False},
        )  # fmt: skip

    @write(single=True)
    def heartbeat_worker(self, worker: str, kind: str, queue: str, done_recent: int) -> Plan[None]:
        yield Stmt(
            "UPDATE pq_workers SET last_seen = :now, done_recent = :done"
            " WHERE id = :id AND kind = :kind AND queue = :queue",
            {"id": worker, "kind": kind, "queue": queue, "done": done_recent},
        )

    @write(single=True)
    def stop_worker(self, worker: str, kind: str, queue: str | None, forget: bool) -> Plan[None]:
        which = "id = :id AND kind = :kind" + ("" if queue is None else " AND queue = :queue")
        args = {"id": worker, "kind": kind, "queue": queue, "stopped": True}
        if forget:
            yield Stmt(f"DELETE FROM pq_workers WHERE {which}", args)
        else:
            yield Stmt(
                f"UPDATE pq_workers SET stopped = :stopped, last_seen = :now WHERE {which}", args
            )

    @read
    def workers(self) -> Plan[WorkersView]:
        [(now,)] = yield Stmt("SELECT :now")
        rows = yield Stmt(
            "SELECT id, kind, queue, host, pid, started_at, last_seen, stopped, done_recent"
            " FROM pq_workers ORDER BY last_seen DESC"
        )
        held = yield Stmt(
            "SELECT worker, id, claimed_at FROM pq_jobs"
            " WHERE status = 'in_progress' AND worker IS NOT NULL ORDER BY claimed_at, id"
        )
        return WorkersView(
            float(now),
            [WorkerRow(*r[:7], bool(r[7]), int(r[8] or 0)) for r in rows],
            [(w, i, c) for w, i, c in held],
        )

    @read(single=True)
    def holders(self) -> Plan[list[str]]:
        rows = yield Stmt(
            "SELECT DISTINCT worker FROM pq_jobs"
            " WHERE status = 'in_progress' AND worker IS NOT NULL"
        )
        return [r[0] for r in rows]

    @read(single=True)
    def expired(self) -> Plan[bool]:
        rows = yield Stmt(
            "SELECT 1 FROM pq_jobs WHERE status = 'in_progress' AND lease_expires_at <= :now"
            " LIMIT 1"
        )
        return bool(rows)

    @read(single=True)
    def now(self) -> Plan[float]:
        [(now,)] = yield Stmt("SELECT :now")
        return float(now)


# The lease a claim or heartbeat gets: what was asked, capped by the manager's ceiling.
CAPPED_LEASE = (
    "min(:lease, coalesce((SELECT CAST(value AS REAL) FROM pq_meta WHERE key = 'lease_cap'),"
    " :lease))"
)

# Finished jobs have an index on their age; the extra condition lets the planner use it.
_FINISHED = {
    "done": " AND status IN ('done', 'dead')",
    "dead": " AND status IN ('done', 'dead')",
}


def _by_queue(rows: Sequence[tuple]) -> dict[str, list[int]]:
    """(id, queue) rows as queue → ids, ids ascending."""
    groups: dict[str, list[int]] = defaultdict(list)
    for job_id, queue in sorted(rows):
        groups[queue].append(job_id)
    return dict(groups)


def id_text(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def json_ids(ids: Sequence[int]) -> str:
    return json.dumps([int(i) for i in ids])


def outcome_of(token: str, row: tuple | None) -> Outcome:
    """Why a claim's settlement changed nothing, from the job's (status, token) now."""
    if row is None:
        return Outcome.MISSING
    status, current = row
    if current != token:
        return Outcome.LOST
    return Outcome.ALREADY if status in (Status.DONE, Status.DEAD, Status.READY) else Outcome.LOST


def check_batch(jobs: Sequence[NewJob]) -> None:
    """A batch of several jobs is what put_many makes: one queue, one set of options, no
    dedup_key. Each backend stores such a batch its fastest way; both refuse any other."""
    first = jobs[0]
    if len(jobs) > 1 and any(
        j.dedup_key is not None
        or (j.queue, j.priority, j.max_attempts, j.delay)
        != (first.queue, first.priority, first.max_attempts, first.delay)
        for j in jobs
    ):
        raise InvalidValue("a batch put shares one queue and one set of options, and no dedup_key")


def check_search(text: str) -> str:
    """Search text both backends can look for: SQLite's LIKE ends a pattern at a NUL (so it
    matched every job) and PostgreSQL's text cannot hold one; neither can send a lone
    surrogate."""
    if "\x00" in text:
        raise InvalidValue(f"search text {text!r} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"search text {text!r} is not valid text (a lone surrogate)") from None
    return text


def check_status(status: str) -> str:
    if status not in {s.value for s in Status}:
        raise InvalidValue(f"unknown status {status!r}")
    return status
