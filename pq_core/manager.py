"""The manager: takes back jobs whose consumer crashed or whose lease ran out, dead-letters the
exhausted ones, records what it did, and keeps the store tidy.

The decision "a job that was not finished goes back to ready, or to dead once it has used its
attempts" lives here, in `after_failure`, and nowhere else.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pq_core import identity
from pq_core.errors import InvalidValue
from pq_core.model import Duration, Status, SweepReport, parse_duration, positive_int
from pq_core.queue import Queue
from pq_core.store.base import Held, WorkerRow

_MAINTAIN_EVERY = 12  # sweeps between WAL checkpoints and pruning
_FORGET_AFTER = 7 * 86400.0  # drop worker registrations not heard from in a week


def after_failure(attempts: int, max_attempts: int) -> Status:
    """Where an unfinished job goes: dead once it has had max_attempts attempts, else ready."""
    return Status.DEAD if attempts >= max_attempts else Status.READY


class Manager:
    """Watches one store (every queue in it). Several managers may run at once: each sweep is
    one transaction under the write lock, so no job is taken back or counted twice."""

    def __init__(
        self,
        queue: Queue,
        lease_timeout: Duration | None = None,
        max_attempts: int | None = None,
        interval: Duration = 5,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.queue = queue
        self.store = queue.store
        # Beyond each claim's own lease: a job not heartbeat for this long is taken back too.
        self.lease_timeout = (
            None if lease_timeout is None else parse_duration(lease_timeout, "lease_timeout")
        )
        # Caps each job's own max_attempts when given.
        self.max_attempts = (
            None if max_attempts is None else positive_int(max_attempts, "max_attempts")
        )
        self.interval = parse_duration(interval, "interval")
        if self.interval <= 0:
            raise InvalidValue(f"interval must be more than 0 seconds, not {interval!r}")
        self.clock = clock or queue.clock
        self.actor = f"manager {identity.short(identity.worker_id())}"
        self._stop = threading.Event()
        self._sweeps = 0

    def sweep(self) -> SweepReport:
        """One pass: take back expired and crashed claims, dead-letter the exhausted ones,
        record it as events. Returns what changed."""
        now = self.clock()
        self._sweeps += 1
        checkpointed = False
        if self._sweeps % _MAINTAIN_EVERY == 1:
            checkpointed = self.store.maintain(now)
            self.store.forget_workers(now - _FORGET_AFTER)
        if not self._taken_back(now):  # a cheap look first, so an idle sweep takes no lock
            return SweepReport(checkpointed=checkpointed)
        with self.store.transaction():
            taken = self._taken_back(now)  # again, under the write lock
            report = self._settle(taken, now)
        return SweepReport(report[0], report[1], report[2], checkpointed)

    def _taken_back(self, now: float) -> dict[int, tuple[Held, str]]:
        stale = None if self.lease_timeout is None else now - self.lease_timeout
        taken = {h.id: (h, "lease expired") for h in self.store.held(now, stale)}
        gone = [w for w in self.store.holders() if identity.is_gone(w)]
        for h in self.store.held_by(gone) if gone else ():
            taken[h.id] = (h, f"worker {identity.short(h.worker)} is gone")
        return taken

    def _settle(self, taken: dict[int, tuple[Held, str]], now: float) -> tuple[int, int, int]:
        groups: dict[tuple[str, str, Status], list[int]] = defaultdict(list)
        for held, reason in taken.values():
            limit = held.max_attempts
            if self.max_attempts is not None:
                limit = min(limit, self.max_attempts)
            groups[(held.queue, reason, after_failure(held.attempts, limit))].append(held.id)
        requeued = dead = 0
        for (queue, reason, status), ids in sorted(groups.items()):
            ready_ids = ids if status == Status.READY else []
            dead_ids = ids if status == Status.DEAD else []
            self.store.settle(ready_ids, dead_ids, now, f"taken back by the manager: {reason}")
            if status == Status.READY:
                requeued += len(ids)
                detail = f"requeued {len(ids)} job(s): {reason}"
                self.store.record(now, queue, "requeue", self.actor, detail, ids)
            else:
                dead += len(ids)
                detail = f"dead-lettered {len(ids)} job(s) out of attempts: {reason}"
                self.store.record(now, queue, "dead", self.actor, detail, ids)
        gone = {h.worker for h, reason in taken.values() if reason != "lease expired"}
        for worker in gone:
            self.store.stop_worker(worker, "consumer", now)
        return requeued, dead, len(gone)

    def run(self, *, sweeps: int | None = None) -> None:
        """Sweep every `interval` until stop(), SIGINT or SIGTERM (or `sweeps` passes).
        A stop() that came before run() began makes it return at once."""
        restore = self._install_signals()
        me = identity.worker_id()
        now = self.clock()
        start = me.rsplit(":", 2)[2]
        self.store.register(
            WorkerRow(me, "manager", self.queue.name, identity.HOST,
                      os.getpid(), start, now, now, False)
        )  # fmt: skip
        done = 0
        try:
            while not self._stop.is_set():
                self.sweep()
                self.store.heartbeat_worker(me, "manager", self.clock())
                done += 1
                if sweeps is not None and done >= sweeps:
                    break
                self._stop.wait(self.interval)
        finally:
            self._stop.clear()  # used up here, not at the start, so an early stop counts
            restore()
            try:
                self.store.stop_worker(me, "manager", self.clock())
            except Exception:
                pass  # a stop must not fail because the store is busy

    def stop(self) -> None:
        self._stop.set()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: object) -> None:
            self.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore
