"""The queue a user holds: producer, consumer and operator calls over a Store.

Every call is written once, in `QueueBase`, as a generator of the store calls it makes
(`StoreCall`): it checks its input before the store is touched, turns rows into Items, and makes
the queue's decisions (what a failure costs comes from `retry.py`). `Queue` runs those
generators against a store synchronously; `pq_core.aio.AsyncQueue` runs the very same ones with
`await`. The store does each call in one transaction; a call never commits and then raises.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import random
import secrets
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from pq_core import identity, steps
from pq_core import payload as codec
from pq_core.consume import Consumer
from pq_core.errors import InvalidValue, ItemNotFound, LeaseLost
from pq_core.lease import LeaseKeeper
from pq_core.model import (
    MAX_COUNT,
    CheckReport,
    Duration,
    ErrorGroup,
    Event,
    Item,
    QueueStats,
    Stats,
    Status,
    Worker,
    error_signature,
    job_id,
    parse_duration,
    positive_int,
    queue_name,
    to_datetime,
)
from pq_core.model import priority as checked_priority
from pq_core.retry import after_failure, retry_delay
from pq_core.store.base import EventRow, JobFilter, JobRow, NewJob, Outcome, Store

T = TypeVar("T")
C = TypeVar("C")

DEFAULT_QUEUE = "default"
_NONE = object()
THIS = object()  # "this queue" default for calls that may also span every queue (queue=None)
SPARK_MINUTES = 30
WORKER_BEAT = 5.0  # seconds between a consumer's registry heartbeats
WORKER_STALE = 60.0  # a worker this process cannot see, silent this long, is shown as gone
MAX_ERROR = 4000  # characters of an error kept (the end: a traceback ends with the exception)
BATCH = 500  # jobs per transaction in bulk actions, so the store is never locked for long
PURGE_BATCH = 5000
EVENT_RETENTION = 30 * 86400.0
DETACHED = "detached"
LEFT_THE_LOOP = (
    "the consume() loop was left with this job in hand (an exception or a break out of "
    "`for item in q.consume()`); use `with q.consume() as jobs:` to record the exception, "
    "or q.stop() to finish cleanly"
)


_tokens: tuple[int, random.Random] = (0, random.Random())


def new_token() -> str:
    """A claim's token: 64 random bits, from a generator seeded by the OS once per process
    (a claim is one row update; a system call per claim would cost more than the update)."""
    global _tokens
    pid, source = _tokens
    if pid != os.getpid():
        _tokens = pid, source = os.getpid(), random.Random(secrets.token_bytes(32))
    return f"{source.getrandbits(64):016x}"


def lease_seconds(value: Duration, name: str = "lease") -> float:
    seconds = parse_duration(value, name)
    if seconds <= 0:
        raise InvalidValue(f"{name} must be more than 0 seconds, not {value!r}")
    return seconds


def error_text(exc: BaseException) -> str:
    """What a failure records: the end of its traceback, which ends with `Type: message`."""
    return stored_text("".join(traceback.format_exception(exc)).strip())


def stored_text(text: str, limit: int = MAX_ERROR) -> str:
    """Text as every backend keeps it: a NUL (which PostgreSQL text cannot hold) shown as \\x00,
    a lone surrogate (not text at all) as \\udXXX, and only the last `limit` characters (an
    error's end says most)."""
    text = text.replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[-limit:]


# -- calls written once, run synchronously or with await -----------------------------------------


class StoreCall(NamedTuple):
    """One call a queue operation makes on its store: `store.<method>(*args)`."""

    method: str
    args: tuple[Any, ...] = ()


Calls = Generator[StoreCall, Any, T]


class call:  # noqa: N801 - used as a decorator, like property
    """Make a generator of StoreCalls a queue method: `Queue` returns its result, `AsyncQueue`
    a coroutine of it. Each runner sends back what the store returned, or throws in what it
    raised, so the generator's own try/finally blocks hold."""

    def __init__(self, calls: Callable[..., Calls[Any]]) -> None:
        self.calls = calls
        functools.update_wrapper(self, calls)  # type: ignore[arg-type]

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, queue: Any, owner: type | None = None) -> Any:
        if queue is None:
            return self
        calls = self.calls
        drive = queue._drive

        @functools.wraps(calls)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return drive(calls(queue, *args, **kwargs))

        bound.calls = functools.partial(calls, queue)  # type: ignore[attr-defined]
        queue.__dict__[self.name] = bound  # made once per queue: later lookups find it there
        return bound


def drive(calls: Calls[T], store: Any) -> T:
    """Run a generator of StoreCalls against a synchronous store."""
    return steps.run(calls, lambda step: getattr(store, step.method)(*step.args))


class QueueBase:
    """One named queue in a store: every producer, consumer and operator call, written once."""

    def __init__(
        self,
        store: Store,
        queue: str = DEFAULT_QUEUE,
        *,
        lease: Duration = 300,
        max_attempts: int = 3,
        max_payload_bytes: int = 10 * 1024 * 1024,
        heartbeat: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.name = queue_name(queue)
        self.lease = lease_seconds(lease)
        self.max_attempts = positive_int(max_attempts, "max_attempts")
        self.max_payload_bytes = positive_int(max_payload_bytes, "max_payload_bytes", 2**40)
        self.heartbeat_in_background = bool(heartbeat)
        # The client's clock, for its own timers (registry heartbeats); the store's own clock
        # decides every lease, delay and age.
        self.clock = clock or getattr(store, "clock", time.time)
        # Claims handed out by claim()/consume() and not yet left, and those of them the
        # caller settled itself; kept only while open, so a long-lived consumer stays small.
        self._open: set[tuple[int, str]] = set()
        self._settled: set[tuple[int, str]] = set()
        self._registered_pid = 0
        self._last_beat = 0.0
        self._finished: collections.deque[float] = collections.deque()  # acks, monotonic

    def _drive(self, calls: Calls[T]) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.store.location} queue={self.name!r}>"

    @property
    def location(self) -> str:
        """The store's path, or its URL without the password: safe to print."""
        return self.store.location

    # -- producer ------------------------------------------------------------------------------

    @call
    def put(
        self,
        payload: Any,
        *,
        priority: int = 0,
        delay: Duration = 0,
        max_attempts: int | None = None,
        dedup_key: str | None = None,
    ) -> Calls[int]:
        """Store one job and return its id once it is durable. With a dedup_key that a live
        job of this queue holds, store nothing and return that job's id."""
        job = self._new_job(payload, priority, delay, max_attempts, dedup_key)
        return (yield StoreCall("insert", ([job],)))[0]

    @call
    def put_many(self, payloads: Iterable[Any], **options: Any) -> Calls[list[int]]:
        """Store every payload (same options for all) in one transaction; all or none."""
        priority, delay = options.pop("priority", 0), options.pop("delay", 0)
        max_attempts, dedup_key = options.pop("max_attempts", None), options.pop("dedup_key", None)
        if options:
            raise InvalidValue(f"unknown option(s) for put_many: {', '.join(sorted(options))}")
        if dedup_key is not None:
            raise InvalidValue("put_many takes no dedup_key: use put for deduplicated jobs")
        items = iter(payloads)
        first = next(items, _NONE)
        if first is _NONE:
            return []
        job = self._new_job(first, priority, delay, max_attempts, None)  # options checked once
        encode, limit, same = codec.encode, self.max_payload_bytes, job[3:]
        jobs = [job, *(NewJob(job.queue, *encode(p, limit)[::-1], *same) for p in items)]
        return (yield StoreCall("insert", (jobs,)))

    def _new_job(
        self,
        payload: Any,
        priority: int,
        delay: Duration,
        max_attempts: int | None,
        dedup_key: str | None,
    ) -> NewJob:
        encoding, value = codec.encode(payload, self.max_payload_bytes)
        wait = parse_duration(delay, "delay")
        attempts = self.max_attempts if max_attempts is None else max_attempts
        positive_int(attempts, "max_attempts")
        if dedup_key is not None:
            if not isinstance(dedup_key, str) or not dedup_key:
                raise InvalidValue(f"dedup_key must be a non-empty string, not {dedup_key!r}")
            try:
                dedup_key.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidValue(f"dedup_key {dedup_key!r} is not valid text") from None
            if "\x00" in dedup_key:
                raise InvalidValue(f"dedup_key {dedup_key!r} holds a NUL character")
        return NewJob(
            self.name, value, encoding, checked_priority(priority), attempts, wait, dedup_key
        )

    # -- consumer ------------------------------------------------------------------------------

    @call
    def get(
        self,
        timeout: Duration | None = None,
        *,
        lease: Duration | None = None,
        detach: bool = False,
    ) -> Calls[Item | None]:
        """Claim the next ready job under a lease, or return None when nothing is ready.
        With a timeout, wait up to that long for one (woken soon after another process puts).
        `detach=True` claims for a process that will exit while the job is still held (a shell
        script's `pq get`): only its lease decides when it comes back."""
        lease_s = self._lease_seconds(lease)
        if timeout is None:
            claimed = yield from self._claim(1, lease_s, detach=detach)
            return claimed[0] if claimed else None
        deadline = time.monotonic() + parse_duration(timeout, "timeout")
        try:
            while True:
                claimed = yield from self._claim(1, lease_s, detach=detach)
                if claimed:
                    return claimed[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                yield from self._beat()
                yield StoreCall("wait", (self.name, min(left, 1.0)))
        finally:
            yield StoreCall("quiet")

    @call
    def get_many(self, n: int, *, lease: Duration | None = None) -> Calls[list[Item]]:
        """Claim up to n ready jobs in one transaction (never blocks)."""
        return (yield from self._claim(positive_int(n, "n"), self._lease_seconds(lease)))

    def _lease_seconds(self, lease: Duration | None) -> float:
        return self.lease if lease is None else lease_seconds(lease)

    def _consumer(
        self,
        kind: Callable[..., C],
        lease: Duration | None,
        timeout: Duration | None,
        heartbeat: bool | None,
        stop_signals: Iterable[int],
    ) -> C:
        """A consume() loop of this queue (`kind`: Consumer or AsyncConsumer), its options
        checked, remembered so close() can end it."""
        consumer = kind(
            self,
            self._lease_seconds(lease),
            None if timeout is None else parse_duration(timeout, "timeout"),
            self.heartbeat_in_background if heartbeat is None else heartbeat,
            tuple(stop_signals),
        )
        self._consumers.add(consumer)
        return consumer

    def _claim(
        self,
        limit: int,
        lease: float,
        ack: Sequence[tuple[int, str]] = (),
        detach: bool = False,
    ) -> Calls[list[Item]]:
        if detach:
            worker = f"{DETACHED}:{identity.short(identity.worker_id())}"
        else:
            yield from self._register()
            worker = identity.worker_id()
        token = new_token()
        rows, outcomes = yield StoreCall("claim", (self.name, limit, lease, worker, token, ack))
        if ack:
            self._note_finished(sum(1 for o in outcomes if o == Outcome.CHANGED))
        yield from self._beat()  # a busy consumer is heard from too, at most every few seconds
        return [self._item(r, claimed=True) for r in rows]

    def _register(self) -> Calls[None]:
        pid = os.getpid()
        if self._registered_pid == pid:
            return
        yield StoreCall(
            "register", (identity.worker_id(), "consumer", self.name, identity.HOST, pid)
        )
        self._registered_pid = pid
        self._last_beat = self.clock()
        self._open.clear()
        self._settled.clear()

    def _beat(self) -> Calls[None]:
        now = self.clock()
        if now - self._last_beat >= WORKER_BEAT and self._registered_pid == os.getpid():
            self._last_beat = now
            recent = time.monotonic() - 60
            while self._finished and self._finished[0] < recent:
                self._finished.popleft()
            done = len(self._finished)
            yield StoreCall("heartbeat_worker", (identity.worker_id(), "consumer", self.name, done))

    def _note_finished(self, n: int) -> None:
        now = time.monotonic()
        self._finished.extend([now] * min(n, 100_000))

    @call
    def done(self, item: Item) -> Calls[None]:
        """Mark a claimed job done. If its lease ran out but nobody claimed it since, it is
        still marked done; if it was claimed again since, raise LeaseLost and change nothing."""
        outcomes = yield StoreCall("complete", ([claim_of(item)],))
        self._check_outcomes([item], outcomes)

    @call
    def done_many(self, items: Sequence[Item]) -> Calls[None]:
        """Mark several claimed jobs done in one transaction. Jobs claimed again since are left
        alone and reported by one LeaseLost after the others are committed."""
        if items:
            outcomes = yield StoreCall("complete", ([claim_of(i) for i in items],))
            self._check_outcomes(items, outcomes)

    def _check_outcomes(self, items: Sequence[Item], outcomes: Sequence[Outcome]) -> None:
        lost, missing = [], []
        for item, outcome in zip(items, outcomes, strict=True):
            self._note_settled(claim_of(item))
            if outcome == Outcome.LOST:
                lost.append(item.id)
            elif outcome == Outcome.MISSING:
                missing.append(item.id)
        self._note_finished(sum(1 for o in outcomes if o == Outcome.CHANGED))
        if missing:
            raise ItemNotFound(f"job(s) {_ids(missing)} no longer exist in {self.location}")
        if lost:
            raise LeaseLost(
                f"job(s) {_ids(lost)}: claimed again since this claim (or never claimed with "
                "this token); nothing changed"
            )

    @call
    def fail(
        self, item: Item, error: str | None = None, *, retry_in: Duration | None = None
    ) -> Calls[Status]:
        """Give a claimed job back: ready again after a back-off, or dead once it has had
        max_attempts attempts. Returns the status it went to (or, if it was no longer held
        and nobody claimed it since, the status it is in)."""
        claim = claim_of(item)
        status = after_failure(item.attempts, item.max_attempts)
        delay = retry_delay(item.attempts) if retry_in is None else parse_duration(retry_in)
        text = None if error is None else stored_text(str(error))
        signature = error_signature(text or "failed")
        outcome, now_status = yield StoreCall(
            "fail",
            (claim[0], claim[1], status.value, delay, text, signature, identity.worker_id()),
        )
        self._note_settled(claim)
        if outcome == Outcome.LOST:
            raise LeaseLost(
                f"job {item.id}: claimed again since this claim (or never claimed with this "
                "token); nothing changed"
            )
        if outcome == Outcome.MISSING or now_status is None:
            raise ItemNotFound(f"job {item.id} no longer exists in {self.location}")
        return Status(now_status)

    @call
    def heartbeat(self, item: Item, *, lease: Duration | None = None) -> Calls[Item]:
        """Extend a held claim's lease (by the lease it was granted, or `lease`). Returns the
        item with its new lease; LeaseLost if the claim is no longer held."""
        claim = claim_of(item)
        if lease is None and item.lease_expires_at is not None:
            length = max(item.lease_expires_at.timestamp() - item.updated_at.timestamp(), 0.001)
        else:
            length = self._lease_seconds(lease)
        outcome, lease_times = yield StoreCall("extend", (claim[0], claim[1], length))
        if outcome == Outcome.MISSING:
            raise ItemNotFound(f"job {item.id} no longer exists in {self.location}")
        if outcome != Outcome.CHANGED or lease_times is None:
            raise LeaseLost(f"job {item.id}: this claim is no longer held; it may run elsewhere")
        yield from self._beat()
        now, expires = lease_times
        return dataclasses.replace(
            item, lease_expires_at=to_datetime(expires), updated_at=to_datetime(now)
        )

    @call
    def release(self, item: Item) -> Calls[None]:
        """Put a held job back to ready at once without counting the attempt (a consumer that
        is stopping before it started the work). LeaseLost if it was claimed again since."""
        claim = claim_of(item)
        outcome = yield StoreCall("release", claim)
        self._note_settled(claim)
        if outcome == Outcome.LOST:
            raise LeaseLost(f"job {item.id}: claimed again since this claim; nothing changed")
        if outcome == Outcome.MISSING:
            raise ItemNotFound(f"job {item.id} no longer exists in {self.location}")

    def _note_settled(self, claim: tuple[int, str]) -> None:
        if claim in self._open:
            self._settled.add(claim)

    def _holding(self, item: Item, heartbeat: bool | None) -> tuple[int, str]:
        """A claim() body starts with this job: note it open, keep its lease alive."""
        claim = claim_of(item)
        self._open.add(claim)
        if self.heartbeat_in_background if heartbeat is None else heartbeat:
            self._keeper.hold(item)  # type: ignore[attr-defined]
        return claim

    def _let_go(self, item: Item, claim: tuple[int, str]) -> bool:
        """The body ended: stop keeping the lease; whether the body settled the job itself."""
        self._keeper.forget(item)  # type: ignore[attr-defined]
        self._open.discard(claim)
        settled = claim in self._settled
        self._settled.discard(claim)
        return settled

    def _settle_after(self, item: Item, exc: BaseException | None) -> Calls[None]:
        """Settle a job whose body ended early: an exception is a failure (its traceback
        recorded); an interruption (KeyboardInterrupt, SystemExit, a cancelled task) or a clean
        early exit (exc None) puts it back without costing an attempt."""
        try:
            if exc is None or not isinstance(exc, Exception):
                yield from self.release.calls(item)  # type: ignore[attr-defined]
            else:
                yield from self.fail.calls(item, error=error_text(exc))  # type: ignore[attr-defined]
        except (LeaseLost, ItemNotFound):
            pass  # taken back, claimed elsewhere or removed meanwhile: nothing of ours to settle

    def _abandoned(self, item: Item) -> Calls[None]:
        """A plain consume() loop was left with this job in hand: it cannot tell an exception
        from a break, so the job is failed (an attempt, a back-off, dead at max_attempts)."""
        try:
            yield from self.fail.calls(item, error=LEFT_THE_LOOP)  # type: ignore[attr-defined]
        except (LeaseLost, ItemNotFound):
            pass

    # -- operator ------------------------------------------------------------------------------

    @call
    def stats(self) -> Calls[Stats]:
        """Counts per status for every queue that exists in the store (has jobs or is paused),
        scheduled jobs, the oldest ready job's age, and done and failed per minute for the last
        30 minutes. Reads counters and indexes, never the whole table. `stats()[name]` of a
        queue that does not exist is all zero."""
        raw = yield StoreCall("stats", (SPARK_MINUTES + 1,))
        minute = int(raw.now // 60)
        minutes = range(minute - SPARK_MINUTES + 1, minute + 1)
        names = {q for (q, _s), n in raw.counts.items() if n > 0} | set(raw.paused)
        queues: dict[str, QueueStats] = {}
        for name in sorted(names):
            per_status = {s: raw.counts.get((name, s.value), 0) for s in Status}
            oldest = raw.oldest_ready.get(name) if per_status[Status.READY] else None
            queues[name] = QueueStats(
                name,
                per_status,
                None if oldest is None else max(raw.now - oldest, 0.0),
                tuple(raw.per_minute.get((name, "done", m), 0) for m in minutes),
                tuple(raw.per_minute.get((name, "failed", m), 0) for m in minutes),
                raw.scheduled.get(name, 0),
                name in raw.paused,
            )
        return Stats(queues, to_datetime(raw.now))  # type: ignore[arg-type]

    def _filter(
        self,
        status: Any,
        queue: Any,
        search: str | None = None,
        error: str | None = None,
        scheduled: bool | None = None,
        id_range: tuple[int, int] | None = None,
    ) -> JobFilter:
        if search is not None and not isinstance(search, str):
            raise InvalidValue(f"search must be text, not {search!r}")
        if error is not None and not isinstance(error, str):
            raise InvalidValue(f"error must be an error signature (text), not {error!r}")
        if scheduled not in (None, True, False):
            raise InvalidValue(f"scheduled must be True, False or None, not {scheduled!r}")
        if id_range is not None:
            if not isinstance(id_range, tuple | list) or len(id_range) != 2:
                raise InvalidValue(f"id_range must be (from, to), not {id_range!r}")
            id_range = (job_id(id_range[0]), job_id(id_range[1]))
        return JobFilter(
            self._scope(queue), _statuses(status), search or None, error, scheduled, id_range
        )

    def _scope(self, queue: Any) -> str | None:
        return self.name if queue is THIS else None if queue is None else queue_name(queue)

    @call
    def items(
        self,
        status: str | Status | Sequence[str | Status] | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        queue: Any = THIS,
        search: str | None = None,
        error: str | None = None,
        scheduled: bool | None = None,
        newest_first: bool = True,
        after_id: int | None = None,
        id_range: tuple[int, int] | None = None,
    ) -> Calls[list[Item]]:
        """One page of jobs of this queue (queue=None: every queue), newest first by default.
        `scheduled=True` gives only ready jobs not yet available, soonest first; False leaves
        them out; `error` a signature from errors(); `after_id` continues a listing after that
        job; `id_range=(from, to)` looks only at those ids (a text search over a big store can
        go window by window, each window a bounded read)."""
        where = self._filter(status, queue, search, error, scheduled, id_range)
        after = None if after_id is None else job_id(after_id)
        page = positive_int(limit, "limit")
        rows = yield StoreCall("rows", (where, page, _offset(offset), bool(newest_first), after))
        return [self._item(r) for r in rows]

    @call
    def count(
        self,
        status: str | Status | Sequence[str | Status] | None = None,
        *,
        queue: Any = THIS,
        search: str | None = None,
        error: str | None = None,
        scheduled: bool | None = None,
        id_range: tuple[int, int] | None = None,
    ) -> Calls[int]:
        """How many jobs of this queue (queue=None: every queue) match. From counters unless
        a text search, error, scheduled or id filter asks for more."""
        where = self._filter(status, queue, search, error, scheduled, id_range)
        return (yield StoreCall("count", (where,)))

    @call
    def item(self, item_id: int, *, queue: str | None = None) -> Calls[Item]:
        """One job, with its history (oldest first). With `queue`, a job of another queue is
        not found."""
        wanted = job_id(item_id)
        row = yield StoreCall("row", (wanted,))
        if row is None:
            raise ItemNotFound(f"no job {item_id} in {self.location}")
        if queue is not None and row.queue != queue:
            raise ItemNotFound(f"job {wanted} is in queue {row.queue!r}, not {queue!r}")
        history = yield StoreCall("history", (wanted,))
        return dataclasses.replace(self._item(row), history=tuple(_event(e) for e in history))

    @call
    def requeue(
        self,
        ids: int | Item | Iterable[int | Item],
        *,
        reset_attempts: bool = True,
        actor: str | None = None,
        queue: str | None = None,
    ) -> Calls[int]:
        """Put jobs that are not ready back to ready (attempts reset unless asked otherwise).
        Returns how many changed; recorded as an event. With `queue`, ids of another queue are
        refused (ItemNotFound) and nothing changes."""
        args = (_id_list(ids), bool(reset_attempts), _actor(actor), _only(queue))
        return len((yield StoreCall("requeue", args)))

    @call
    def delete(
        self,
        ids: int | Item | Iterable[int | Item],
        *,
        actor: str | None = None,
        queue: str | None = None,
    ) -> Calls[int]:
        """Remove jobs for good. Returns how many were removed; recorded as an event."""
        args = (_id_list(ids), _actor(actor), _only(queue))
        return len((yield StoreCall("delete", args)))

    @call
    def run_now(
        self,
        ids: int | Item | Iterable[int | Item],
        *,
        actor: str | None = None,
        queue: str | None = None,
    ) -> Calls[int]:
        """Make scheduled jobs (delayed or backing off) available at once; returns how many."""
        args = (_id_list(ids), _actor(actor), _only(queue))
        return len((yield StoreCall("run_now", args)))

    @call
    def requeue_matching(
        self,
        *,
        status: Any = None,
        search: str | None = None,
        error: str | None = None,
        scheduled: bool | None = None,
        queue: Any = THIS,
        reset_attempts: bool = True,
        actor: str | None = None,
    ) -> Calls[int]:
        """Requeue every job matching the filter, a few hundred per transaction."""
        where = self._filter(status, queue, search, error, scheduled)
        extra = (bool(reset_attempts), _actor(actor), None)
        return (yield from self._in_batches(where, "requeue", extra))

    @call
    def delete_matching(
        self,
        *,
        status: Any = None,
        search: str | None = None,
        error: str | None = None,
        scheduled: bool | None = None,
        queue: Any = THIS,
        actor: str | None = None,
    ) -> Calls[int]:
        """Delete every job matching the filter, a few hundred per transaction."""
        where = self._filter(status, queue, search, error, scheduled)
        return (yield from self._in_batches(where, "delete", (_actor(actor), None)))

    def _in_batches(self, where: JobFilter, method: str, extra: tuple[Any, ...]) -> Calls[int]:
        done, after = 0, 0
        while True:
            ids = yield StoreCall("matching_ids", (where, after, BATCH))
            if not ids:
                return done
            done += len((yield StoreCall(method, (ids, *extra))))
            after = ids[-1]

    @call
    def purge(
        self,
        older_than: Duration = 0,
        status: str | Status = Status.DONE,
        *,
        queue: Any = THIS,
        dry_run: bool = False,
        actor: str | None = None,
    ) -> Calls[int]:
        """Remove jobs of `status` (default done) last changed at least `older_than` ago, in
        this queue (queue=None: every queue), a few thousand per transaction. With dry_run,
        only count them."""
        age = parse_duration(older_than, "older_than")
        state = Status.parse(status).value
        target = self._scope(queue)
        if dry_run:
            return (yield StoreCall("purge_count", (target, state, age)))
        who = _actor(actor)
        removed = 0
        while True:
            n = yield StoreCall("purge", (target, state, age, PURGE_BATCH, who))
            removed += n
            if n < PURGE_BATCH:
                return removed

    @call
    def errors(self, *, queue: Any = THIS, limit: int = 50) -> Calls[list[ErrorGroup]]:
        """Failed (backing off) and dead jobs grouped by error signature, biggest first."""
        rows = yield StoreCall("errors", (self._scope(queue), positive_int(limit, "limit")))
        return [
            ErrorGroup(
                r.signature, r.count, r.dead, r.count - r.dead,
                to_datetime(r.newest_at), r.queues, r.example,  # type: ignore[arg-type]
            )
            for r in rows
        ]  # fmt: skip

    @call
    def events(
        self, limit: int = 100, offset: int = 0, *, queue: str | None = None
    ) -> Calls[list[Event]]:
        """Manager and operator activity, newest first."""
        args = (_only(queue), positive_int(limit, "limit"), _offset(offset))
        return [_event(e) for e in (yield StoreCall("events", args))]

    @call
    def workers(self) -> Calls[list[Worker]]:
        """Registered consumers and managers: whether each still looks alive, the jobs it holds
        now, since when, and how many it finished in the last minute."""
        view = yield StoreCall("workers")
        held: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        for worker, job, claimed_at in view.held:
            held[worker].append((job, claimed_at))
        out = []
        for w in view.workers:
            if w.stopped:
                alive = False
            elif identity.can_judge(w.id):
                alive = not identity.is_gone(w.id)
            else:
                alive = view.now - w.last_seen < WORKER_STALE
            jobs = held.get(w.id, []) if w.kind == "consumer" else []
            fresh = view.now - w.last_seen < WORKER_BEAT * 13
            out.append(
                Worker(
                    w.id, w.kind, w.queue, w.host, w.pid, to_datetime(w.started_at),
                    to_datetime(w.last_seen), alive, tuple(j for j, _ in jobs),
                    to_datetime(min(c for _, c in jobs)) if jobs else None,
                    w.done_recent if alive and fresh else 0,
                )  # type: ignore[arg-type]
            )  # fmt: skip
        return out

    @call
    def pause(self, *, queue: str | None = None, actor: str | None = None) -> Calls[bool]:
        """Stop handing out this queue's jobs (or those of the queue named) to every consumer;
        puts still succeed. False if it already was paused. Recorded as an event."""
        name = self.name if queue is None else queue_name(queue)
        return (yield StoreCall("set_paused", (name, True, _actor(actor))))

    @call
    def resume(self, *, queue: str | None = None, actor: str | None = None) -> Calls[bool]:
        """Hand out this queue's jobs (or those of the queue named) again. False if it was not
        paused."""
        name = self.name if queue is None else queue_name(queue)
        return (yield StoreCall("set_paused", (name, False, _actor(actor))))

    @call
    def is_paused(self, *, queue: str | None = None) -> Calls[bool]:
        name = self.name if queue is None else queue_name(queue)
        return (yield StoreCall("is_paused", (name,)))

    @call
    def check(self) -> Calls[CheckReport]:
        """Run the database's integrity check and compare the counters with the rows."""
        problems = tuple((yield StoreCall("check")))
        return CheckReport(not problems, problems)

    # -- the design notes' names ---------------------------------------------------------------

    @call
    def put_item(self, payload: Any, **options: Any) -> Calls[int]:
        return (yield from self.put.calls(payload, **options))  # type: ignore[attr-defined]

    @call
    def get_item(self, item_id: int | None = None) -> Calls[Item | None]:
        """With an id, that job; without, claim the next one (as the notes' consumer did)."""
        if item_id is None:
            return (yield from self.get.calls())  # type: ignore[attr-defined]
        return (yield from self.item.calls(item_id))  # type: ignore[attr-defined]

    @call
    def update_item_status(self, item_id: int, status: str | Status) -> Calls[None]:
        """Force a job's status by id, as the notes' consumer and manager did."""
        state = Status.parse(status)
        if not (yield StoreCall("set_status", (job_id(item_id), state.value, identity.user()))):
            raise ItemNotFound(f"no job {item_id} in {self.location}")

    @call
    def update_job_status(self, item_id: int, status: str | Status = Status.DONE) -> Calls[None]:
        return (yield from self.update_item_status.calls(item_id, status))  # type: ignore[attr-defined]

    @call
    def get_item_state(self) -> Calls[list[dict[str, Any]]]:
        """The in-progress jobs of this queue with claim time and attempts."""
        view = yield StoreCall("workers")
        claimed = {job: at for _w, job, at in view.held}
        where = JobFilter(self.name, (Status.IN_PROGRESS.value,))
        rows = yield StoreCall("rows", (where, MAX_COUNT, 0, False, None))
        return [
            {
                "id": row.id,
                "claimed_at": to_datetime(claimed.get(row.id, row.updated_at)),
                "attempts": row.attempts,
                "max_attempts": row.max_attempts,
                "lease_expires_at": to_datetime(row.lease_expires_at),
                "worker": row.worker,
            }
            for row in rows
        ]

    @call
    def remove_item(self, item_id: int) -> Calls[bool]:
        return (yield from self.delete.calls([item_id])) == 1  # type: ignore[attr-defined]

    @call
    def get_all_items(self) -> Calls[list[dict[str, Any]]]:
        """Every job of this queue as a dict, oldest first (for small queues and scripts)."""
        out: list[dict[str, Any]] = []
        where = JobFilter(self.name)
        after = None
        while True:
            rows = yield StoreCall("rows", (where, 1000, 0, False, after))
            out.extend(_as_dict(self._item(r)) for r in rows)
            if len(rows) < 1000:
                return out
            after = rows[-1].id

    # -- rows to items -------------------------------------------------------------------------

    @staticmethod
    def _item(row: JobRow, *, claimed: bool = False) -> Item:
        """An Item from a row. Only a claim's own Item carries the token: a job read by an
        operator or a listing must not be able to settle the claim a consumer holds."""
        return Item(
            row.id, row.queue, codec.decode(row.encoding, row.payload), Status(row.status),
            row.priority, row.attempts, row.max_attempts,
            to_datetime(row.created_at), to_datetime(row.updated_at),  # type: ignore[arg-type]
            to_datetime(row.available_at), to_datetime(row.lease_expires_at),  # type: ignore[arg-type]
            row.worker, row.last_error, row.dedup_key, row.token if claimed else None,
        )  # fmt: skip


class Queue(QueueBase):
    """One named queue in a store, used synchronously. Safe to share between threads; open
    anew after fork."""

    def __init__(self, store: Store, queue: str = DEFAULT_QUEUE, **options: Any) -> None:
        super().__init__(store, queue, **options)
        self._stop = threading.Event()
        self._consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()
        self._keeper = LeaseKeeper(self.heartbeat, self._beat_now, on_idle=store.close)

    def _drive(self, calls: Calls[T]) -> T:
        return drive(calls, self.store)

    def _beat_now(self) -> None:
        drive(self._beat(), self.store)

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Put back any job a consume() loop still holds, forget this consumer's registration
        and close this thread's connection."""
        for consumer in list(self._consumers):
            consumer.close()
        self._keeper.close()
        if self._registered_pid == os.getpid() and not self.store.read_only:
            try:
                self.store.stop_worker(identity.worker_id(), "consumer", self.name, True)
            except Exception:
                pass  # closing must not fail because the store is busy or gone
        self._registered_pid = 0  # a claim after close registers this consumer again
        self.store.close()

    @contextmanager
    def claim(
        self,
        timeout: Duration | None = None,
        *,
        lease: Duration | None = None,
        heartbeat: bool | None = None,
    ) -> Iterator[Item | None]:
        """`with q.claim() as item:` claims a job (None if none is ready) and keeps its lease
        alive while the block runs. Done when the block ends; failed when it raises (the
        exception's type, message and traceback tail recorded; back-off; dead at max_attempts)
        and re-raised; put back without costing an attempt on KeyboardInterrupt/SystemExit."""
        item = self.get(timeout, lease=lease)
        if item is None:
            yield None
            return
        claim = self._holding(item, heartbeat)
        try:
            yield item
        except BaseException as exc:
            if not self._let_go(item, claim):
                self._drive(self._settle_after(item, exc))
            raise
        if not self._let_go(item, claim):
            self.done(item)

    def consume(
        self,
        *,
        lease: Duration | None = None,
        timeout: Duration | None = None,
        heartbeat: bool | None = None,
        stop_signals: Iterable[int] = (),
    ) -> Consumer:
        """Jobs one at a time until stop() (or, with a timeout, until none arrives for that
        long). A job is done when the loop asks for the next one: its ack and the next claim
        share one transaction. Its lease is kept alive while the loop body runs. A lost
        connection or a busy store is retried with a back-off, the pending ack kept.

        Use it as `with q.consume() as jobs: for item in jobs: ...`: an exception in the body
        then fails the job exactly as claim() does, KeyboardInterrupt/SystemExit or leaving
        the loop early puts it back without costing an attempt, and the block never ends with
        a job in progress. In a plain `for item in q.consume():` the loop cannot see why it was
        left: a job in hand is then failed (an attempt, a back-off, dead at max_attempts).
        `stop_signals=(signal.SIGTERM,)` makes those signals finish the job in hand, ack it
        and stop (main thread only)."""
        return self._consumer(Consumer, lease, timeout, heartbeat, stop_signals)

    def stop(self) -> None:
        """Make consume() return after the job in hand, or at once if it has not begun yet
        (safe from a signal handler)."""
        self._stop.set()


# -- small checks and conversions ---------------------------------------------------------------


def claim_of(item: Item) -> tuple[int, str]:
    if not isinstance(item, Item) or item.token is None:
        raise InvalidValue(
            f"expected the Item that get() returned (it carries the claim), not {item!r}"
        )
    return item.id, item.token


def _id_list(ids: Any) -> list[int]:
    if isinstance(ids, int | str | Item):
        return [job_id(ids)]
    if not isinstance(ids, Iterable):
        raise InvalidValue(f"expected job ids, not {ids!r}")
    return list(dict.fromkeys(job_id(i) for i in ids))


def _statuses(status: Any) -> tuple[str, ...] | None:
    if status is None:
        return None
    if isinstance(status, str | Status):
        return (Status.parse(status).value,)
    return tuple(dict.fromkeys(Status.parse(s).value for s in status)) or None


def _offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_COUNT:
        raise InvalidValue(f"offset must be a whole number of at least 0, not {offset!r}")
    return offset


def _only(queue: str | None) -> str | None:
    return None if queue is None else queue_name(queue)


def _actor(actor: str | None) -> str:
    if actor is None:
        return identity.user()
    if not isinstance(actor, str):
        raise InvalidValue(f"actor must be text, not {actor!r}")
    return stored_text(actor[:200])


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def _event(e: EventRow) -> Event:
    ids = tuple(json.loads(e.job_ids)) if e.job_ids else ()
    return Event(e.id, to_datetime(e.at), e.queue, e.kind, e.actor, e.count, e.detail, ids)  # type: ignore[arg-type]


def _as_dict(item: Item) -> dict[str, Any]:
    data = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    data.pop("token")
    data.pop("history")
    data["status"] = item.status.value
    return data
