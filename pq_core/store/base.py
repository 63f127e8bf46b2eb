"""The Store protocol: what a backend must do. Every call is atomic: it happens whole or not at
all, as one transaction (one statement where the backend can).

A backend stores rows; `queue.py` turns them into Items and makes the queue's decisions (retry
policy, validation). Times are float seconds since the epoch (UTC) read from the store's own
clock: the host's for SQLite (injectable, for tests), the server's for PostgreSQL, so clients
on many machines agree on every lease, delay and age. Callers pass durations, never times.

Claims carry a token. A job keeps the token of its last claim until it is claimed again, so a
done/fail/heartbeat with a token settles only that claim (`Outcome`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

COLUMNS = (
    "id",
    "queue",
    "payload",
    "encoding",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "created_at",
    "updated_at",
    "available_at",
    "lease_expires_at",
    "worker",
    "last_error",
    "dedup_key",
    "token",
)


class JobRow(NamedTuple):
    id: int
    queue: str
    payload: str | bytes
    encoding: str  # "str", "bytes" or "json"
    status: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: float
    updated_at: float
    available_at: float
    lease_expires_at: float | None
    worker: str | None
    last_error: str | None
    dedup_key: str | None
    token: str | None


class NewJob(NamedTuple):
    queue: str
    payload: str | bytes
    encoding: str
    priority: int
    max_attempts: int
    delay: float  # seconds from the store's now until it may be claimed
    dedup_key: str | None


class Outcome(enum.StrEnum):
    """What a done/fail/heartbeat/release with a claim's token did."""

    CHANGED = "changed"  # settled (or extended) as asked
    ALREADY = "already"  # the job is no longer held, and nobody claimed it since: nothing to do
    LOST = "lost"  # the job was claimed again since, or the token was never handed out
    MISSING = "missing"  # no such job


class Held(NamedTuple):
    """An in-progress job as the manager sees it."""

    id: int
    queue: str
    attempts: int
    max_attempts: int
    worker: str | None
    claimed_at: float | None
    lease_expires_at: float | None
    token: str | None


class Verdict(NamedTuple):
    """The manager's decision for one taken-back job."""

    held: Held
    status: str  # "ready" or "dead"
    reason: str


class JobFilter(NamedTuple):
    """Which jobs a listing, count or bulk action means. queue None: every queue."""

    queue: str | None = None
    statuses: tuple[str, ...] | None = None
    search: str | None = None
    error: str | None = None  # an error signature
    scheduled: bool | None = None  # True: ready but not yet available; False: not those
    id_range: tuple[int, int] | None = None  # ids from, to (both included): a search's window


class WorkerRow(NamedTuple):
    id: str
    kind: str
    queue: str
    host: str
    pid: int
    started_at: float
    last_seen: float
    stopped: bool
    done_recent: int  # jobs it finished in the minute before last_seen


class EventRow(NamedTuple):
    id: int
    at: float
    queue: str
    kind: str
    actor: str
    count: int
    detail: str
    job_ids: str  # JSON list, possibly truncated


class StoreStats(NamedTuple):
    now: float
    counts: dict[tuple[str, str], int]  # (queue, status) → jobs
    scheduled: dict[str, int]  # queue → ready jobs not yet available
    oldest_ready: dict[str, float]  # queue → created_at of its oldest ready job
    per_minute: dict[tuple[str, str, int], int]  # (queue, "done" | "failed", minute) → jobs
    paused: frozenset[str]


class WorkersView(NamedTuple):
    now: float
    workers: list[WorkerRow]
    held: list[tuple[str, int, float]]  # (worker, job id, claimed_at) of every in-progress job


class ErrorRow(NamedTuple):
    signature: str
    count: int
    dead: int
    newest_at: float
    queues: tuple[str, ...]
    example: str


Decide = Callable[[list[Held]], list[Verdict]]


class Store(Protocol):
    location: str
    """The path, or the URL without its password: safe to print."""
    read_only: bool

    def close(self) -> None:
        """Close this thread's connection; the store stays usable (it reconnects)."""

    def now(self) -> float:
        """The store's clock."""

    # -- producer ------------------------------------------------------------------------------

    def insert(self, jobs: Sequence[NewJob]) -> list[int]:
        """Store every job or none, ready at now + delay; their ids, in order. A job whose
        dedup_key is live (ready or in progress) in its queue stores nothing and yields the live
        job's id. A batch of several jobs is what put_many makes: one queue, one set of options
        and no dedup_key; any other batch is InvalidValue."""

    # -- consumer ------------------------------------------------------------------------------

    def claim(
        self,
        queue: str,
        limit: int,
        lease: float,
        worker: str,
        token: str,
        ack: Sequence[tuple[int, str]] = (),
    ) -> tuple[list[JobRow], list[Outcome]]:
        """With `ack`, first mark those claims done by the rules of `complete`. Then, unless the
        queue is paused, move up to `limit` ready jobs whose time has come to in_progress
        (attempts + 1, this token and worker), best priority first, then oldest, under a lease
        of `lease` seconds capped by the store's lease ceiling. One transaction."""

    def complete(self, claims: Sequence[tuple[int, str]]) -> list[Outcome]:
        """Mark each (id, token) done: CHANGED if the token is the job's last claim and it is not
        done yet (held, or taken back and not claimed since); ALREADY if done; LOST if the token
        is not its last claim's; MISSING if there is no such job. One outcome per claim."""

    def fail(
        self,
        job_id: int,
        token: str,
        status: str,
        retry_in: float,
        error: str | None,
        error_sig: str | None,
        actor: str,
    ) -> tuple[Outcome, str | None]:
        """Settle a held claim as `status` (ready after `retry_in` seconds, or dead) with its
        error recorded in the job and its history, and counted as failed this minute. Returns
        the outcome and the job's status afterwards (None when missing)."""

    def extend(
        self, job_id: int, token: str, lease: float
    ) -> tuple[Outcome, tuple[float, float] | None]:
        """Push a held claim's lease to now + `lease` (capped by the lease ceiling). CHANGED and
        (now, the new expiry), or LOST/ALREADY/MISSING when the claim is not held."""

    def release(self, job_id: int, token: str) -> Outcome:
        """Put a held claim back to ready at once, giving its attempt back."""

    # -- manager -------------------------------------------------------------------------------

    def holders(self) -> list[str]:
        """The distinct workers that hold in-progress jobs."""

    def expired(self) -> bool:
        """Whether any in-progress job's lease has run out (a cheap look, no lock)."""

    def take_back(self, gone: Sequence[str], decide: Decide, actor: str) -> list[Verdict]:
        """Lock the in-progress jobs whose lease ran out or whose worker is in `gone`, ask
        `decide` what becomes of each, and apply it: ready at once or dead, the reason as the
        error, counted as failed, one event per (queue, reason, status). A job settled by its
        consumer meanwhile is left alone. Several managers never take a job back twice.
        Store calls `decide` makes on this thread are part of this transaction (each undone
        alone if it fails)."""

    def set_lease_cap(self, seconds: float | None) -> None:
        """The longest lease a claim or heartbeat may get (None: no ceiling)."""

    def maintain(self, event_retention: float, worker_retention: float) -> bool:
        """Housekeeping: drop events older than `event_retention` seconds and registrations
        not heard from for `worker_retention`, prune old per-minute counters, fold counters,
        bound the write-ahead log. True if it checkpointed."""

    # -- operator ------------------------------------------------------------------------------

    def requeue(
        self, ids: Sequence[int], reset_attempts: bool, actor: str, only_queue: str | None
    ) -> list[int]:
        """Put these jobs (any status but ready) back to ready now; one event per queue. With
        `only_queue`, an id of another queue raises ItemNotFound and nothing changes. Returns
        the ids changed."""

    def delete(self, ids: Sequence[int], actor: str, only_queue: str | None) -> list[int]:
        """Remove these jobs and what refers only to them; one event per queue."""

    def run_now(self, ids: Sequence[int], actor: str, only_queue: str | None) -> list[int]:
        """Make these ready-but-scheduled jobs available now; one event per queue."""

    def purge(
        self, queue: str | None, status: str, older_than: float, limit: int, actor: str
    ) -> int:
        """Remove up to `limit` jobs of `status` last changed at least `older_than` seconds ago
        (one event when any were); returns how many."""

    def purge_count(self, queue: str | None, status: str, older_than: float) -> int:
        """How many jobs `purge` would remove."""

    def set_status(self, job_id: int, status: str, actor: str) -> bool:
        """Force one job's status (the design notes' update_item_status); False if missing."""

    def set_paused(self, queue: str, paused: bool, actor: str) -> bool:
        """Pause or resume a queue; False if it already was. Recorded as an event."""

    def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""

    def matching_ids(self, where: JobFilter, after: int, limit: int) -> list[int]:
        """Ids of jobs matching `where`, above `after`, ascending (for actions in batches)."""

    # -- reading -------------------------------------------------------------------------------

    def stats(self, minutes: int) -> StoreStats:
        """Everything `stats()` shows, from counters and indexes (never a scan of the jobs),
        with per-minute counts of (at least) the last `minutes` minutes."""

    def count(self, where: JobFilter) -> int:
        """How many jobs match (counters where they can answer; a text search scans)."""

    def rows(
        self, where: JobFilter, limit: int, offset: int, newest_first: bool, after: int | None
    ) -> list[JobRow]:
        """One page of jobs, served by an index, in id order (newest first: highest ids
        first) — scheduled jobs in the order they become available (soonest first). `after`
        is a job id to continue after."""

    def row(self, job_id: int) -> JobRow | None:
        """One job."""

    def history(self, job_id: int) -> list[EventRow]:
        """The events and failures of one job, oldest first."""

    def events(self, queue: str | None, limit: int, offset: int) -> list[EventRow]:
        """The activity log, newest first."""

    def errors(self, queue: str | None, limit: int) -> list[ErrorRow]:
        """Failed (ready, backing off) and dead jobs grouped by error signature, biggest first."""

    def check(self) -> list[str]:
        """Problems found by the database's integrity check and by comparing the counters with
        the rows; empty when all is well."""

    # -- workers -------------------------------------------------------------------------------

    def register(self, worker: str, kind: str, queue: str, host: str, pid: int) -> None:
        """Add or refresh a consumer's (of one queue) or manager's registration."""

    def heartbeat_worker(self, worker: str, kind: str, queue: str, done_recent: int) -> None:
        """Note that a worker is alive and how many jobs it finished in the last minute."""

    def stop_worker(self, worker: str, kind: str, queue: str | None, forget: bool) -> None:
        """Note a clean stop, of one queue's registration or (queue None) all of them;
        forget: remove the registration."""

    def workers(self) -> WorkersView:
        """Every registration with the jobs held now."""

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, queue: str, timeout: float) -> None:
        """Return once a job of `queue` may have become ready, or after `timeout` seconds. No
        busy loop. The first call may return at once (it starts listening)."""

    def quiet(self) -> None:
        """Stop listening for wake-ups (the consumer stopped waiting)."""
