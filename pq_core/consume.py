"""The claim loop behind `consume()`, written once and run by `Consumer` (for loops) and by
`pq_core.aio.AsyncConsumer` (async for loops).

The loop is a generator of steps: a `StoreCall` to make, a `Pause` to back off, or a
`Deliver` of the next job to the loop body. A job is acked when the body asks for the next one,
in the same transaction as the next claim. A lost connection or a busy store is retried with a
back-off and the pending ack kept (acking again what did commit changes nothing).

How the loop was left decides the fate of the job in hand. In a `with` block the block's end
says how: an exception fails the job, KeyboardInterrupt/SystemExit/cancellation or a clean
early exit puts it back without costing an attempt. A plain `for` loop cannot tell an exception
from a break, so a job in hand is then failed (an attempt, a back-off, dead at max_attempts).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from pq_core.errors import ConnectionLost, InvalidValue, StoreLocked
from pq_core.model import Item
from pq_core.store.base import Outcome

if TYPE_CHECKING:
    from pq_core.queue import Calls, Queue, QueueBase, StoreCall

RETRY_MAX = 5.0  # longest back-off of a loop whose store is unreachable or busy
IDLE_WAIT = 0.25  # longest wait of an idle loop between looks at the store


class Deliver(NamedTuple):
    """Hand this job to the loop body; resumed when the body asks for the next one."""

    item: Item


class Pause(NamedTuple):
    """Back off this long (cut short by stop())."""

    seconds: float


Steps = Generator["StoreCall | Deliver | Pause", Any, None]


class ConsumerBase:
    """A consume() loop's state: its options, the job in hand, the finished one not yet acked."""

    def __init__(
        self,
        queue: QueueBase,
        lease: float,
        idle_limit: float | None,
        heartbeat: bool,
        stop_signals: tuple[int, ...],
    ) -> None:
        self.queue = queue
        self.lease = lease
        self.idle_limit = idle_limit
        self.heartbeat = heartbeat
        self.stop_signals = stop_signals
        self._in_hand: Item | None = None
        self._ack: list[tuple[int, str]] = []
        self._entered = False
        self._iterating = False
        self._restore: dict[int, Any] = {}

    def _steps(self) -> Steps:
        from pq_core.queue import StoreCall, claim_of

        q = self.queue
        pause = 0.005
        idle_since = time.monotonic()
        trouble = 0.0
        waited = False  # since the last job: a waiting store may have started listening
        while True:
            if q._stop.is_set():
                yield from self._flush()
                q._stop.clear()  # used up here, not at the start, so an early stop counts
                return
            try:
                claimed = yield from q._claim(1, self.lease, self._ack)
            except (ConnectionLost, StoreLocked):
                trouble = min(max(trouble * 2, 0.1), RETRY_MAX)
                yield Pause(trouble)
                continue
            trouble = 0.0
            self._ack = []
            if not claimed:
                idle = time.monotonic() - idle_since
                if self.idle_limit is not None and idle >= self.idle_limit:
                    return
                yield from q._beat()
                yield StoreCall("wait", (q.name, pause))
                waited = True
                pause = min(pause * 2, IDLE_WAIT)
                continue
            if waited:  # busy again: no wake-ups pile up while the body runs
                yield StoreCall("quiet")
                waited = False
            item = claimed[0]
            claim = claim_of(item)
            self._in_hand = item
            q._open.add(claim)
            if self.heartbeat:
                q._keeper.hold(item)
            yield Deliver(item)
            q._keeper.forget(item)
            self._in_hand = None
            q._open.discard(claim)
            if claim in q._settled:
                q._settled.discard(claim)
            else:
                self._ack = [claim]
            pause = 0.005
            idle_since = time.monotonic()

    def _drop_in_hand(self, exc: BaseException | None, abandoned: bool) -> Calls[None]:
        """Settle the job in hand as the loop's end says, unless its body settled it itself."""
        from pq_core.queue import claim_of

        item, self._in_hand = self._in_hand, None
        if item is None:
            return
        q = self.queue
        claim = claim_of(item)
        q._keeper.forget(item)
        try:
            if claim not in q._settled:
                yield from (q._abandoned(item) if abandoned else q._settle_after(item, exc))
        finally:
            q._open.discard(claim)
            q._settled.discard(claim)

    def _flush(self) -> Calls[None]:
        from pq_core.queue import StoreCall

        ack, self._ack = self._ack, []
        if ack:
            outcomes = yield StoreCall("complete", (ack,))
            self.queue._note_finished(sum(1 for o in outcomes if o == Outcome.CHANGED))

    def _start(self) -> None:
        if self._iterating:
            raise InvalidValue("this consume() is already being iterated")
        self._iterating = True
        if not self._entered:
            self._install_signals()

    def _install_signals(self) -> None:
        if not self.stop_signals or self._restore:
            return
        if threading.current_thread() is not threading.main_thread():
            raise InvalidValue("stop_signals works in the main thread only")
        for sig in self.stop_signals:
            self._restore[sig] = signal.signal(sig, lambda *_: self.queue.stop())

    def _restore_signals(self) -> None:
        restore, self._restore = self._restore, {}
        for sig, old in restore.items():
            signal.signal(sig, old)


class Consumer(ConsumerBase):
    """What `Queue.consume()` returns: iterate it for jobs; use it in a `with` block so that
    the end of the block settles the job in hand by how the block ended."""

    queue: Queue

    def __enter__(self) -> Consumer:
        self._entered = True
        self._install_signals()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.queue._drive(self._drop_in_hand(exc, abandoned=False))
            self.queue._drive(self._flush())
        finally:
            self._entered = False
            self._restore_signals()

    def close(self) -> None:
        """Put back the job in hand (without costing an attempt) and ack the finished one."""
        self.queue._drive(self._drop_in_hand(None, abandoned=False))
        self.queue._drive(self._flush())

    def __iter__(self) -> Iterator[Item]:
        self._start()
        return self._run()

    def _run(self) -> Iterator[Item]:
        q = self.queue
        steps = self._steps()
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = steps.throw(error) if error is not None else steps.send(value)
                except StopIteration:
                    return
                value, error = None, None
                if isinstance(step, Deliver):
                    try:
                        yield step.item
                    except GeneratorExit:
                        if not self._entered:  # a `with` block settles it at its end instead
                            q._drive(self._drop_in_hand(None, abandoned=True))
                        raise
                elif isinstance(step, Pause):
                    q._stop.wait(step.seconds)
                else:
                    try:
                        value = getattr(q.store, step.method)(*step.args)
                    except Exception as exc:
                        error = exc
        finally:
            steps.close()
            self._iterating = False
            q.store.quiet()
            if not self._entered:
                self._restore_signals()
