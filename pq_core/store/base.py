"""The Store protocol: what a backend must do, each call atomic unless said otherwise.

A backend stores raw rows; `queue.py` turns them into Items and makes the queue's decisions.
Rows are tuples in the order of `COLUMNS`. Times are float seconds since the epoch (UTC),
always passed in by the caller so that a test can fix the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
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

Row = tuple


class NewJob(NamedTuple):
    queue: str
    payload: str | bytes
    encoding: str  # "str", "bytes" or "json"
    priority: int
    max_attempts: int
    available_at: float
    dedup_key: str | None


class Held(NamedTuple):
    """An in-progress job as the manager sees it."""

    id: int
    queue: str
    attempts: int
    max_attempts: int
    worker: str | None
    claimed_at: float | None
    lease_expires_at: float | None


class WorkerRow(NamedTuple):
    id: str
    kind: str
    queue: str
    host: str
    pid: int
    proc_start: str
    started_at: float
    last_seen: float
    stopped: bool


class EventRow(NamedTuple):
    id: int
    at: float
    queue: str
    kind: str
    actor: str
    count: int
    detail: str
    job_ids: str  # JSON list, possibly truncated


class Store(Protocol):
    location: str
    """The path or URL, for messages."""
    read_only: bool

    def close(self) -> None:
        """Close this thread's connection; the store stays usable from others."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group the write calls made inside into one atomic transaction holding the write lock."""

    def insert(self, jobs: Sequence[NewJob], now: float) -> list[int]:
        """Store every job or none. A job whose dedup_key is live (ready or in progress) in its
        queue stores nothing and yields the live job's id."""

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
        """Move up to `limit` ready jobs whose time has come to in_progress (attempts + 1), best
        priority first, then oldest. With `ack`, first mark those claims done, in the same
        transaction, by the rules of `complete`."""

    def complete(self, claims: Sequence[tuple[int, str]], now: float) -> list[str]:
        """Mark each (id, token) done. A claim still held, or a job waiting again (ready) or dead,
        is marked done: "done". Already done: "already". Held under another token: "lost",
        nothing changed. No such job: "missing". One outcome per claim, in order."""

    def fail(
        self,
        job_id: int,
        token: str,
        now: float,
        status: str,
        available_at: float,
        error: str | None,
    ) -> str:
        """Settle a held claim as `status` (ready or dead) with its error recorded.
        Outcome as `complete`: "done" when changed, "lost", "already" or "missing"."""

    def extend(self, job_id: int, token: str, lease_until: float, now: float) -> bool:
        """Push a held claim's lease out; False when the claim is no longer held."""

    def release(self, job_id: int, token: str, now: float) -> None:
        """Put a held claim back to ready without counting it as a failure."""

    def held(self, now: float, stale_before: float | None) -> list[Held]:
        """In-progress jobs whose lease ended by `now` (or, with stale_before, not heartbeat
        since then). Call inside `transaction()` when acting on the answer."""

    def holders(self) -> list[str]:
        """The distinct workers that hold in-progress jobs."""

    def held_by(self, workers: Sequence[str]) -> list[Held]:
        """In-progress jobs claimed by these workers."""

    def all_held(self) -> list[Held]:
        """Every in-progress job."""

    def settle(self, ready: Sequence[int], dead: Sequence[int], now: float, error: str) -> None:
        """Manager's verdict on taken-back jobs: `ready` are put back now, `dead` dead-lettered."""

    def requeue(self, ids: Sequence[int], now: float, reset_attempts: bool) -> list[int]:
        """Put these jobs (any status but ready) back to ready; return the ids changed."""

    def delete(self, ids: Sequence[int]) -> list[int]:
        """Remove these jobs; return the ids removed."""

    def purge(self, queue: str | None, status: str, before: float, dry_run: bool) -> int:
        """Remove (or with dry_run only count) jobs of `status` last changed before `before`."""

    def set_status(self, job_id: int, status: str, now: float) -> bool:
        """Force one job's status (the design notes' update_item_status); False if missing."""

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
        """Append one event to the activity log, and to each named job's history. `count` is how
        many jobs it concerned when they are not named (a purge); else len(job_ids)."""

    def events(self, queue: str | None, limit: int, offset: int) -> list[EventRow]:
        """Activity, newest first."""

    def history(self, job_id: int) -> list[EventRow]:
        """The events that touched one job, oldest first."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads made inside see one consistent state of the store."""

    def counts(self) -> dict[tuple[str, str], int]:
        """(queue, status) → number of jobs, without scanning the jobs."""

    def oldest_ready(self, queue: str) -> float | None:
        """created_at of the oldest ready job of a queue."""

    def done_per_minute(self, queue: str, since_minute: int) -> dict[int, int]:
        """minute number (epoch seconds // 60) → jobs done in it, from `since_minute` on."""

    def rows(
        self,
        queue: str | None,
        statuses: Sequence[str] | None,
        search: str | None,
        limit: int,
        offset: int,
        newest_first: bool,
    ) -> list[Row]:
        """One page of jobs, served by an index (search scans only until the page is full)."""

    def row(self, job_id: int) -> Row | None:
        """One job."""

    def register(self, worker: WorkerRow) -> None:
        """Add or refresh a consumer's or manager's registration."""

    def heartbeat_worker(self, worker_id: str, kind: str, now: float) -> None:
        """Note that a worker is alive."""

    def stop_worker(self, worker_id: str, kind: str, now: float) -> None:
        """Note a clean stop."""

    def workers(self) -> list[WorkerRow]:
        """Every registration, newest heartbeat first."""

    def forget_workers(self, before: float) -> None:
        """Drop registrations not heard from since `before`."""

    def maintain(self, now: float) -> bool:
        """Housekeeping: bound the write-ahead log, prune old counters. True if it checkpointed."""

    def wait(self, queue: str, timeout: float) -> None:
        """Return once another process may have stored or freed a job of `queue`, or after
        `timeout` seconds, whichever is first. Cheap: no busy loop."""
