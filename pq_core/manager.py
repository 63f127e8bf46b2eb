"""The manager: takes back jobs whose lease ran out or whose consumer is provably gone,
dead-letters the exhausted ones, records what it did, and keeps the store tidy.

The decision "a job taken back goes to ready, or to dead once it has used its attempts" is
`decide` here; what a failure costs is `retry.after_failure`, shared with the consumers.
A job whose consumer is alive and whose lease has not run out is never taken back: the lease
a consumer is told is the one enforced. `lease_timeout` is a ceiling the store applies to every
claim and heartbeat, so `item.lease_expires_at` is always the truth.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pq_core import identity
from pq_core.errors import ConnectionLost, InvalidValue, StoreLocked
from pq_core.model import Duration, SweepReport, parse_duration, positive_int
from pq_core.queue import EVENT_RETENTION, Queue
from pq_core.retry import after_failure
from pq_core.store.base import Held, Verdict

MAINTAIN_EVERY = 12  # sweeps between housekeeping passes
WORKER_RETENTION = 3600.0  # registrations not heard from in an hour are forgotten
LEASE_EXPIRED = "lease expired"

log = logging.getLogger("pq.manager")


class Manager:
    """Watches one store (every queue in it). Several managers may run at once: each sweep
    locks the jobs it takes back, so no job is taken back or counted twice."""

    def __init__(
        self,
        queue: Queue,
        lease_timeout: Duration | None = None,
        max_attempts: int | None = None,
        interval: Duration = 5,
        *,
        event_retention: Duration = EVENT_RETENTION,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.queue = queue
        self.store = queue.store
        # The longest lease any claim or heartbeat gets (the design notes' lease timeout).
        self.lease_timeout = (
            None if lease_timeout is None else parse_duration(lease_timeout, "lease_timeout")
        )
        if self.lease_timeout is not None and self.lease_timeout <= 0:
            raise InvalidValue(f"lease_timeout must be more than 0 seconds, not {lease_timeout!r}")
        # Caps each job's own max_attempts when given.
        self.max_attempts = (
            None if max_attempts is None else positive_int(max_attempts, "max_attempts")
        )
        self.interval = parse_duration(interval, "interval")
        if self.interval <= 0:
            raise InvalidValue(f"interval must be more than 0 seconds, not {interval!r}")
        self.event_retention = parse_duration(event_retention, "event_retention")
        self.clock = clock or queue.clock
        self.actor = f"manager {identity.short(identity.worker_id())}"
        self._stop = threading.Event()
        self._sweeps = 0
        self._cap_set = False

    def decide(self, held: Sequence[Held], gone: frozenset[str]) -> list[Verdict]:
        """What becomes of jobs taken back: ready at once, or dead once out of attempts."""
        out = []
        for h in held:
            limit = (
                h.max_attempts
                if self.max_attempts is None
                else min(h.max_attempts, self.max_attempts)
            )
            reason = (
                f"worker {identity.short(h.worker)} is gone" if h.worker in gone else LEASE_EXPIRED
            )
            out.append(Verdict(h, after_failure(h.attempts, limit).value, reason))
        return out

    def sweep(self) -> SweepReport:
        """One pass: take back expired and crashed claims, dead-letter the exhausted ones,
        record it as events. Returns what changed."""
        if not self._cap_set:
            self.store.set_lease_cap(self.lease_timeout)
            self._cap_set = True
        self._sweeps += 1
        checkpointed = False
        if self._sweeps % MAINTAIN_EVERY == 1:
            checkpointed = self.store.maintain(self.event_retention, WORKER_RETENTION)
        gone = frozenset(w for w in self.store.holders() if identity.is_gone(w))
        if not gone and not self.store.expired():  # a cheap look first: an idle sweep locks nothing
            return SweepReport(checkpointed=checkpointed)
        verdicts = self.store.take_back(
            sorted(gone), lambda held: self.decide(held, gone), self.actor
        )
        requeued = sum(1 for v in verdicts if v.status == "ready")
        crashed = {v.held.worker for v in verdicts if v.reason != LEASE_EXPIRED}
        for worker in crashed:
            self.store.stop_worker(worker, "consumer", None, False)  # type: ignore[arg-type]
        report = SweepReport(requeued, len(verdicts) - requeued, len(crashed), checkpointed)
        if report.changed:
            log.info(
                "sweep: requeued %d, dead-lettered %d, crashed workers %d",
                report.requeued, report.dead, report.crashed_workers,
            )  # fmt: skip
        return report

    def run(self, *, sweeps: int | None = None) -> None:
        """Sweep every `interval` until stop(), SIGINT or SIGTERM (or `sweeps` passes). A lost
        connection or a busy store is retried with a back-off; the loop carries on. A stop()
        that came before run() began makes it return at once."""
        restore = self._install_signals()
        me = identity.worker_id()
        done = 0
        registered = False
        trouble = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if not registered:
                        self.store.register(
                            me, "manager", self.queue.name, identity.HOST, os.getpid()
                        )
                        registered = True
                    self.sweep()
                    self.store.heartbeat_worker(me, "manager", self.queue.name, 0)
                    trouble = 0.0
                except (ConnectionLost, StoreLocked) as exc:
                    trouble = min(max(trouble * 2, 0.5), 30.0)
                    log.warning("sweep failed, trying again in %.1f s: %s", trouble, exc)
                    self._stop.wait(trouble)
                    continue
                done += 1
                if sweeps is not None and done >= sweeps:
                    break
                self._stop.wait(self.interval)
        finally:
            self._stop.clear()  # used up here, not at the start, so an early stop counts
            restore()
            try:
                self.store.stop_worker(me, "manager", self.queue.name, False)
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
