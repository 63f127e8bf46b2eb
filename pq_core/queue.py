"""The queue a user holds: producer, consumer and operator calls over a Store."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pq_core import identity
from pq_core.errors import (
    InvalidValue,
    ItemNotFound,
    LeaseLost,
    PayloadError,
    PayloadTooLarge,
)
from pq_core.model import (
    MAX_INT,
    Duration,
    Event,
    Item,
    QueueStats,
    Stats,
    Status,
    Worker,
    parse_duration,
    positive_int,
    to_datetime,
)
from pq_core.store.base import EventRow, NewJob, Row, Store, WorkerRow

DEFAULT_QUEUE = "default"
_ALL = object()  # "this queue" default for operator calls that may also span every queue
_SPARK_MINUTES = 30
_WORKER_BEAT = 5.0  # seconds between a consumer's registry heartbeats
_WORKER_STALE = 60.0  # a worker on another host not heard from for this long is shown as gone
_MAX_ERROR = 4000


def retry_delay(attempts: int) -> float:
    """Back-off before a failed job is tried again: 1 s, 2 s, 4 s … capped at 5 minutes."""
    return float(min(2 ** max(attempts - 1, 0), 300))


class Queue:
    """One named queue in a store. Safe to share between threads; open anew after fork."""

    def __init__(
        self,
        store: Store,
        queue: str = DEFAULT_QUEUE,
        *,
        lease: Duration = 300,
        max_attempts: int = 3,
        max_payload_bytes: int = 10 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(queue, str) or not queue.strip():
            raise InvalidValue(f"queue name must be a non-empty string, not {queue!r}")
        self.store = store
        self.name = queue
        self.lease = parse_duration(lease, "lease")
        self.max_attempts = positive_int(max_attempts, "max_attempts")
        self.max_payload_bytes = positive_int(max_payload_bytes, "max_payload_bytes")
        self.clock = clock
        self._stop = threading.Event()
        # Claims handed out by claim()/consume() and not yet left, and those of them the
        # caller settled itself; kept only while open, so a long-lived consumer stays small.
        self._open: set[tuple[int, str]] = set()
        self._settled: set[tuple[int, str]] = set()
        self._registered_pid = 0
        self._last_beat = 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.store.location} queue={self.name!r}>"

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Note a clean stop of this consumer and close this thread's connection."""
        if self._registered_pid and not self.store.read_only:
            try:
                self.store.stop_worker(identity.worker_id(), "consumer", self.clock())
            except Exception:
                pass  # closing must not fail because the store is busy
        self._registered_pid = 0  # a claim after close registers this consumer again
        self.store.close()

    # -- producer ----------------------------------------------------------------------------

    def put(
        self,
        payload: Any,
        *,
        priority: int = 0,
        delay: Duration = 0,
        max_attempts: int | None = None,
        dedup_key: str | None = None,
    ) -> int:
        """Store one job and return its id once it is durable. With a dedup_key that a live
        job of this queue holds, store nothing and return that job's id."""
        now = self.clock()
        job = self._new_job(payload, priority, delay, max_attempts, dedup_key, now)
        return self.store.insert([job], now)[0]

    def put_many(self, payloads: Iterable[Any], **options: Any) -> list[int]:
        """Store every payload (same options for all) in one transaction; all or none."""
        now = self.clock()
        priority, delay = options.pop("priority", 0), options.pop("delay", 0)
        max_attempts, dedup_key = options.pop("max_attempts", None), options.pop("dedup_key", None)
        if options:
            raise InvalidValue(f"unknown option(s) for put_many: {', '.join(sorted(options))}")
        if dedup_key is not None:
            raise InvalidValue("put_many takes no dedup_key: use put for deduplicated jobs")
        jobs = [self._new_job(p, priority, delay, max_attempts, None, now) for p in payloads]
        return self.store.insert(jobs, now) if jobs else []

    def _new_job(
        self,
        payload: Any,
        priority: int,
        delay: Duration,
        max_attempts: int | None,
        dedup_key: str | None,
        now: float,
    ) -> NewJob:
        encoding, value = self._encode(payload)
        if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_INT:
            raise InvalidValue(f"priority must be a whole number (64-bit), not {priority!r}")
        wait = parse_duration(delay, "delay") if delay else 0.0
        attempts = self.max_attempts if max_attempts is None else max_attempts
        positive_int(attempts, "max_attempts")
        if dedup_key is not None and not isinstance(dedup_key, str):
            raise InvalidValue(f"dedup_key must be a string, not {dedup_key!r}")
        return NewJob(self.name, value, encoding, priority, attempts, now + wait, dedup_key)

    def _encode(self, payload: Any) -> tuple[str, str | bytes]:
        if isinstance(payload, str):
            encoding, value, size = "str", payload, len(payload)
            if size * 4 > self.max_payload_bytes:  # exact only when it could matter
                size = len(payload.encode("utf-8", "surrogatepass"))
        elif isinstance(payload, bytes | bytearray | memoryview):
            encoding, value = "bytes", bytes(payload)
            size = len(value)
        else:
            try:
                value = json.dumps(payload, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise PayloadError(
                    f"payload of type {type(payload).__name__} is not str, bytes or "
                    f"JSON-serialisable: {exc}"
                ) from None
            encoding, size = "json", len(value.encode("utf-8", "surrogatepass"))
        if size > self.max_payload_bytes:
            raise PayloadTooLarge(
                f"payload is {size} bytes, over max_payload_bytes={self.max_payload_bytes}"
            )
        return encoding, value

    # -- consumer ----------------------------------------------------------------------------

    def get(self, timeout: Duration | None = None, *, lease: Duration | None = None) -> Item | None:
        """Claim the next ready job under a lease, or return None when nothing is ready.
        With a timeout, wait up to that long for one (woken soon after another process puts)."""
        lease_s = self._lease_seconds(lease)
        if timeout is None:
            claimed = self._claim(1, lease_s)
            return claimed[0] if claimed else None
        deadline = time.monotonic() + parse_duration(timeout, "timeout")
        while True:
            claimed = self._claim(1, lease_s)
            if claimed:
                return claimed[0]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._beat()
            self.store.wait(self.name, min(left, 1.0))

    def get_many(self, n: int, *, lease: Duration | None = None) -> list[Item]:
        """Claim up to n ready jobs in one transaction (never blocks)."""
        return self._claim(positive_int(n, "n"), self._lease_seconds(lease))

    def _lease_seconds(self, lease: Duration | None) -> float:
        return self.lease if lease is None else parse_duration(lease, "lease")

    def _claim(self, limit: int, lease: float, ack: Sequence[tuple[int, str]] = ()) -> list[Item]:
        self._register()
        now = self.clock()
        token = secrets.token_hex(8)
        rows = self.store.claim(
            self.name, limit, now, now + lease, identity.worker_id(), token, ack
        )
        self._beat()  # a busy consumer is heard from too, at most every few seconds
        return [self._item(r, claimed=True) for r in rows]

    def _register(self) -> None:
        pid = os.getpid()
        if self._registered_pid == pid:
            return
        now = self.clock()
        host_pid = identity.worker_id().rsplit(":", 2)
        self.store.register(
            WorkerRow(
                identity.worker_id(), "consumer", self.name, identity.HOST,
                pid, host_pid[2], now, now, False,
            )
        )  # fmt: skip
        self._registered_pid = pid
        self._last_beat = now
        self._open.clear()
        self._settled.clear()

    def _beat(self) -> None:
        now = self.clock()
        if now - self._last_beat >= _WORKER_BEAT and self._registered_pid:
            self._last_beat = now
            self.store.heartbeat_worker(identity.worker_id(), "consumer", now)

    def done(self, item: Item) -> None:
        """Mark a claimed job done. If its lease ran out but nobody claimed it again, it is still
        marked done; if another consumer holds it now, raise LeaseLost and change nothing."""
        self._settle_outcomes([item], self.store.complete([_claim_of(item)], self.clock()))

    def done_many(self, items: Sequence[Item]) -> None:
        """Mark several claimed jobs done in one transaction. Jobs another consumer now holds
        are left alone and reported by one LeaseLost after the others are committed."""
        if items:
            outcomes = self.store.complete([_claim_of(i) for i in items], self.clock())
            self._settle_outcomes(items, outcomes)

    def _settle_outcomes(self, items: Sequence[Item], outcomes: Sequence[str]) -> None:
        lost, missing = [], []
        for item, outcome in zip(items, outcomes, strict=True):
            self._note_settled(_claim_of(item))
            if outcome == "lost":
                lost.append(item.id)
            elif outcome == "missing":
                missing.append(item.id)
        if missing:
            raise ItemNotFound(f"job(s) {_ids(missing)} no longer exist in {self.store.location}")
        if lost:
            raise LeaseLost(
                f"job(s) {_ids(lost)}: the lease ran out and another consumer holds it now; "
                "nothing changed"
            )

    def fail(
        self, item: Item, error: str | None = None, *, retry_in: Duration | None = None
    ) -> Status:
        """Give a claimed job back: ready again after a back-off, or dead once it has had
        max_attempts attempts. Returns the status it went to."""
        from pq_core.manager import after_failure

        claim = _claim_of(item)
        now = self.clock()
        status = after_failure(item.attempts, item.max_attempts)
        delay = retry_delay(item.attempts) if retry_in is None else parse_duration(retry_in)
        text = None if error is None else str(error)[-_MAX_ERROR:]
        with self.store.transaction():
            outcome = self.store.fail(claim[0], claim[1], now, status, now + delay, text)
            if outcome == "done":
                kind = "dead" if status == Status.DEAD else "failed"
                detail = f"attempt {item.attempts}/{item.max_attempts}: {text or 'failed'}"
                self.store.record(now, self.name, kind, identity.worker_id(), detail, [item.id])
        self._note_settled(claim)
        if outcome == "lost":
            raise LeaseLost(
                f"job {item.id}: the lease ran out and another consumer holds it now; "
                "nothing changed"
            )
        if outcome == "missing":
            raise ItemNotFound(f"job {item.id} no longer exists in {self.store.location}")
        if outcome == "done":
            return status
        row = self.store.row(item.id)  # settled meanwhile (requeued, done, dead): say where
        if row is None:
            raise ItemNotFound(f"job {item.id} no longer exists in {self.store.location}")
        return Status(row[4])

    def _note_settled(self, claim: tuple[int, str]) -> None:
        if claim in self._open:
            self._settled.add(claim)

    def heartbeat(self, item: Item, *, lease: Duration | None = None) -> Item:
        """Extend a held claim's lease (by the lease it was claimed with, or `lease`).
        Returns the item with its new lease; LeaseLost if the claim is no longer held."""
        claim = _claim_of(item)
        now = self.clock()
        if lease is None and item.lease_expires_at is not None:
            length = max(item.lease_expires_at.timestamp() - item.updated_at.timestamp(), 1.0)
        else:
            length = self._lease_seconds(lease)
        if not self.store.extend(claim[0], claim[1], now + length, now):
            raise LeaseLost(f"job {item.id}: this claim is no longer held; it may run elsewhere")
        self._beat()
        return dataclasses.replace(
            item, lease_expires_at=to_datetime(now + length), updated_at=to_datetime(now)
        )

    @contextmanager
    def claim(
        self, timeout: Duration | None = None, *, lease: Duration | None = None
    ) -> Iterator[Item | None]:
        """`with q.claim() as item:` claims a job (None if none is ready): done when the block
        ends normally, failed with the exception's text when it raises (and re-raised)."""
        item = self.get(timeout, lease=lease)
        if item is None:
            yield None
            return
        claim = _claim_of(item)
        self._open.add(claim)
        try:
            try:
                yield item
            except BaseException as exc:
                if claim not in self._settled:
                    self.fail(item, error=f"{type(exc).__name__}: {exc}")
                raise
            if claim not in self._settled:
                self.done(item)
        finally:
            self._open.discard(claim)
            self._settled.discard(claim)

    def consume(
        self, *, lease: Duration | None = None, timeout: Duration | None = None
    ) -> Iterator[Item]:
        """Yield jobs until stop() (or, with a timeout, until none arrives for that long).
        A job is done when the loop asks for the next one: its ack and the next claim share
        one transaction. A job whose loop body raised or broke out is put back to ready."""
        lease_s = self._lease_seconds(lease)
        idle_limit = None if timeout is None else parse_duration(timeout, "timeout")
        pause = 0.005
        idle_since = time.monotonic()
        ack: list[tuple[int, str]] = []
        while True:
            if self._stop.is_set():
                if ack:
                    self.store.complete(ack, self.clock())
                self._stop.clear()  # used up here, not at the start, so an early stop counts
                return
            claimed = self._claim(1, lease_s, ack)
            ack = []
            if not claimed:
                if idle_limit is not None and time.monotonic() - idle_since >= idle_limit:
                    return
                self._beat()
                self.store.wait(self.name, pause)
                pause = min(pause * 2, 0.25)
                continue
            item = claimed[0]
            claim = _claim_of(item)
            self._open.add(claim)
            try:
                yield item
            except GeneratorExit:
                if claim not in self._settled:
                    self.store.release(claim[0], claim[1], self.clock())
                raise
            finally:
                self._open.discard(claim)
                settled = claim in self._settled
                self._settled.discard(claim)
            if not settled:
                ack = [claim]
            pause = 0.005
            idle_since = time.monotonic()

    def stop(self) -> None:
        """Make consume() return after the job in hand, or at once if it has not begun yet
        (safe from a signal handler)."""
        self._stop.set()

    # -- operator ----------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Counts per status for every queue in the store, the oldest ready job's age and done
        per minute for the last 30 minutes. Reads counters and indexes, never the whole table."""
        now = self.clock()
        minute = int(now // 60)
        since = minute - _SPARK_MINUTES + 1
        queues: dict[str, QueueStats] = {}
        with self.store.snapshot():
            counts = self.store.counts()
            names = sorted({q for q, _ in counts} | {self.name})
            for name in names:
                per_status = {s: counts.get((name, s.value), 0) for s in Status}
                oldest = self.store.oldest_ready(name) if per_status[Status.READY] else None
                done = self.store.done_per_minute(name, since)
                spark = tuple(done.get(m, 0) for m in range(since, minute + 1))
                age = None if oldest is None else max(now - oldest, 0.0)
                queues[name] = QueueStats(name, per_status, age, spark)
        return Stats(queues, to_datetime(now))

    def items(
        self,
        status: str | Status | Sequence[str | Status] | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        queue: Any = _ALL,
        search: str | None = None,
        newest_first: bool = True,
    ) -> list[Item]:
        """One page of jobs of this queue (queue=None: every queue), newest first by default."""
        statuses = _statuses(status)
        if not isinstance(offset, int) or offset < 0:
            raise InvalidValue(f"offset must be a whole number of at least 0, not {offset!r}")
        rows = self.store.rows(
            self.name if queue is _ALL else queue,
            statuses,
            search or None,
            positive_int(limit, "limit"),
            offset,
            newest_first,
        )
        return [self._item(r) for r in rows]

    def count(
        self, status: str | Status | Sequence[str | Status] | None = None, *, queue: Any = _ALL
    ) -> int:
        """How many jobs of this queue (queue=None: every queue) have this status."""
        target = self.name if queue is _ALL else queue
        statuses = _statuses(status)
        return sum(
            n
            for (q, s), n in self.store.counts().items()
            if (target is None or q == target) and (not statuses or s in statuses)
        )

    def item(self, item_id: int) -> Item:
        """One job, with its history of events (oldest first)."""
        row = self.store.row(_as_id(item_id))
        if row is None:
            raise ItemNotFound(f"no job {item_id} in {self.store.location}")
        history = tuple(_event(e) for e in self.store.history(row[0]))
        return dataclasses.replace(self._item(row), history=history)

    def requeue(
        self,
        ids: int | Item | Iterable[int | Item],
        *,
        reset_attempts: bool = True,
        actor: str | None = None,
    ) -> int:
        """Put jobs that are not ready back to ready (attempts reset unless asked otherwise).
        Returns how many changed; recorded as an event."""
        wanted = _id_list(ids)
        now = self.clock()
        with self.store.transaction():
            changed = self.store.requeue(wanted, now, reset_attempts)
            for queue, ids in self._by_queue(changed).items():
                detail = f"requeued {len(ids)} job(s): {_ids(ids)}"
                self.store.record(now, queue, "requeue", actor or identity.user(), detail, ids)
        return len(changed)

    def _by_queue(self, ids: Sequence[int]) -> dict[str, list[int]]:
        """Existing jobs among `ids`, grouped by the queue each is in (for their events)."""
        groups: dict[str, list[int]] = {}
        for job_id in dict.fromkeys(ids):
            row = self.store.row(job_id)
            if row is not None:
                groups.setdefault(row[1], []).append(job_id)
        return groups

    def delete(self, ids: int | Item | Iterable[int | Item], *, actor: str | None = None) -> int:
        """Remove jobs for good. Returns how many were removed; recorded as an event."""
        wanted = _id_list(ids)
        now = self.clock()
        with self.store.transaction():
            groups = self._by_queue(wanted)
            # Recorded first, so the event lists the jobs; deleting them then drops only
            # their links to it (a deleted job has no history to show).
            for queue, ids in groups.items():
                detail = f"deleted {len(ids)} job(s): {_ids(ids)}"
                self.store.record(now, queue, "delete", actor or identity.user(), detail, ids)
            removed = self.store.delete([i for ids in groups.values() for i in ids])
        return len(removed)

    def purge(
        self,
        older_than: Duration = 0,
        status: str | Status = Status.DONE,
        *,
        queue: Any = _ALL,
        dry_run: bool = False,
        actor: str | None = None,
    ) -> int:
        """Remove jobs of `status` (default done) last changed at least `older_than` ago, in this
        queue (queue=None: every queue). With dry_run, only count them."""
        age = parse_duration(older_than, "older_than")
        state = Status.parse(status)
        target = self.name if queue is _ALL else queue
        now = self.clock()
        if dry_run:
            return self.store.purge(target, state.value, now - age, True)
        with self.store.transaction():
            n = self.store.purge(target, state.value, now - age, False)
            if n:
                detail = f"purged {n} {state.value} job(s) older than {_age_text(age)}"
                self.store.record(
                    now, target or "*", "purge", actor or identity.user(), detail, [], n
                )
        return n

    def events(self, limit: int = 100, offset: int = 0, *, queue: str | None = None) -> list[Event]:
        """Manager and operator activity, newest first."""
        return [_event(e) for e in self.store.events(queue, positive_int(limit, "limit"), offset)]

    def workers(self) -> list[Worker]:
        """Registered consumers and managers, with whether each still looks alive."""
        now = self.clock()
        out = []
        for w in self.store.workers():
            if w.stopped:
                alive = False
            elif w.host == identity.HOST:
                alive = not identity.is_gone(w.id)
            else:
                alive = now - w.last_seen < _WORKER_STALE
            out.append(
                Worker(w.id, w.kind, w.queue, w.host, w.pid, to_datetime(w.started_at),
                       to_datetime(w.last_seen), alive)
            )  # fmt: skip
        return out

    # -- the design notes' names -------------------------------------------------------------

    def put_item(self, payload: Any, **options: Any) -> int:
        return self.put(payload, **options)

    def get_item(self, item_id: int | None = None) -> Item | None:
        """With an id, that job; without, claim the next one (as the notes' consumer did)."""
        return self.get() if item_id is None else self.item(item_id)

    def update_item_status(self, item_id: int, status: str | Status) -> None:
        """Force a job's status by id, as the notes' consumer and manager did."""
        state = Status.parse(status)
        now = self.clock()
        with self.store.transaction():
            if not self.store.set_status(_as_id(item_id), state.value, now):
                raise ItemNotFound(f"no job {item_id} in {self.store.location}")
            self.store.record(
                now, self.name, f"set {state.value}", identity.user(),
                f"job {item_id} set to {state.value}", [_as_id(item_id)],
            )  # fmt: skip

    def update_job_status(self, item_id: int, status: str | Status = Status.DONE) -> None:
        self.update_item_status(item_id, status)

    def get_item_state(self) -> list[dict[str, Any]]:
        """The in-progress jobs of this queue with claim time and attempts."""
        return [
            {
                "id": h.id,
                "claimed_at": to_datetime(h.claimed_at),
                "attempts": h.attempts,
                "max_attempts": h.max_attempts,
                "lease_expires_at": to_datetime(h.lease_expires_at),
                "worker": h.worker,
            }
            for h in self.store.all_held()
            if h.queue == self.name
        ]

    def remove_item(self, item_id: int) -> bool:
        return self.delete([item_id]) == 1

    def get_all_items(self) -> list[dict[str, Any]]:
        """Every job of this queue as a dict, oldest first (for small queues and scripts)."""
        out, offset = [], 0
        while True:
            page = self.items(limit=1000, offset=offset, newest_first=False)
            out.extend(_as_dict(i) for i in page)
            if len(page) < 1000:
                return out
            offset += 1000

    # -- rows to items -----------------------------------------------------------------------

    @staticmethod
    def _item(row: Row, *, claimed: bool = False) -> Item:
        """An Item from a row. Only a claim's own Item carries the token: a job read by an
        operator or a listing must not be able to settle the claim another consumer holds."""
        (job_id, queue, payload, encoding, status, priority, attempts, max_attempts,
         created, updated, available, lease, worker, error, dedup, token) = row  # fmt: skip
        if encoding == "json":
            payload = json.loads(payload)
        elif encoding == "bytes" and isinstance(payload, str):
            payload = payload.encode()
        return Item(
            job_id, queue, payload, Status(status), priority, attempts, max_attempts,
            to_datetime(created), to_datetime(updated), to_datetime(available),
            to_datetime(lease), worker, error, dedup, token if claimed else None,
        )  # fmt: skip


def _claim_of(item: Item) -> tuple[int, str]:
    if not isinstance(item, Item) or item.token is None:
        raise InvalidValue(
            f"expected the Item that get() returned (it carries the claim), not {item!r}"
        )
    return item.id, item.token


def _as_id(value: Any) -> int:
    if isinstance(value, Item):
        return value.id
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_INT:
        raise InvalidValue(f"job id must be a whole number (64-bit), not {value!r}")
    return value


def _id_list(ids: Any) -> list[int]:
    if isinstance(ids, int | str | Item):
        return [_as_id(ids)]
    return [_as_id(i) for i in ids]


def _statuses(status: Any) -> list[str] | None:
    if status is None:
        return None
    if isinstance(status, str | Status):
        return [Status.parse(status).value]
    return [Status.parse(s).value for s in status] or None


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def _age_text(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _event(e: EventRow) -> Event:
    ids = tuple(json.loads(e.job_ids)) if e.job_ids else ()
    return Event(e.id, to_datetime(e.at), e.queue, e.kind, e.actor, e.count, e.detail, ids)


def _as_dict(item: Item) -> dict[str, Any]:
    data = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    data.pop("token")
    data.pop("history")
    data["status"] = item.status.value
    return data
