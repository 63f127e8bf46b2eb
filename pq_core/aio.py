"""pq for asyncio: `AsyncQueue` offers every call of `Queue` as a coroutine, with the same
semantics, errors and options, and never blocks the event loop.

    q = await pq_core.open_async("jobs.sqlite")
    await q.put({"to": "ada@example.com"})
    async with q.consume() as jobs:
        async for item in jobs:
            await send(item.payload)

The calls are the very ones `Queue` runs (written once in `QueueBase`), awaited here: on a
SQLite store each store call runs on a small pool of threads; on PostgreSQL on psycopg's async
connections, and a waiting `get(timeout=…)` is woken by LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from pq_core import identity, steps
from pq_core.consume import ConsumerBase, Deliver, Pause
from pq_core.errors import InvalidValue
from pq_core.lease import AsyncLeaseKeeper
from pq_core.model import Duration, Item
from pq_core.queue import DEFAULT_QUEUE, Calls, QueueBase, T


async def open_async(target: str | os.PathLike[str], **options: Any) -> AsyncQueue:
    """Open a queue for asyncio: a path means a SQLite store, a postgresql:// URL a PostgreSQL
    one. Takes the options of `pq_core.open`."""
    import pq_core

    text = os.fspath(target)
    if not isinstance(text, str):
        raise InvalidValue(f"a store is a path or a postgresql:// URL, not {target!r}")
    if pq_core.is_url(text):
        from pq_core.store.postgres import AsyncPostgresStore

        busy, read_only = _store_options(options)
        create = bool(options.pop("create", True))
        clock = options.pop("clock", None)
        store: Any = await AsyncPostgresStore.open(
            text, busy_timeout=busy, read_only=read_only, create=create
        )
        return AsyncQueue(store, options.pop("queue", DEFAULT_QUEUE), clock=clock, **options)

    from pq_core.store.threaded import ThreadedStore

    def opened() -> pq_core.Queue:
        q = pq_core.SQLitePersistentQueue(text, **options)
        q.store.close()  # this thread's connection: the store's own threads open theirs
        return q

    # Opening checks and maybe creates the file: disk work, done off the loop too.
    sync = await asyncio.to_thread(opened)
    keep = {
        "lease": sync.lease,
        "max_attempts": sync.max_attempts,
        "max_payload_bytes": sync.max_payload_bytes,
        "heartbeat": sync.heartbeat_in_background,
    }
    return AsyncQueue(ThreadedStore(sync.store), sync.name, clock=sync.clock, **keep)


def _store_options(options: dict[str, Any]) -> tuple[float, bool]:
    from pq_core import _checked

    busy = _checked(options.pop("durability", "full"), options.pop("busy_timeout", 30.0))
    return busy, bool(options.pop("read_only", False))


class AsyncQueue(QueueBase):
    """One named queue in a store, for asyncio: every call of Queue as a coroutine. Use it from
    one event loop; open another for another loop or process."""

    def __init__(self, store: Any, queue: str = DEFAULT_QUEUE, **options: Any) -> None:
        super().__init__(store, queue, **options)
        self._stop = asyncio.Event()
        self._consumers: set[AsyncConsumer] = set()
        self._keeper = AsyncLeaseKeeper(self.heartbeat)

    async def _drive(self, calls: Calls[T]) -> T:
        store = self.store
        return await steps.run_async(calls, lambda step: getattr(store, step.method)(*step.args))

    async def __aenter__(self) -> AsyncQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Put back any job a consume() loop still holds, forget this consumer's registration
        and close the store's connections."""
        for consumer in list(self._consumers):
            await consumer.close()
        await self._keeper.close()
        if self._registered_pid == os.getpid() and not self.store.read_only:
            try:
                await self.store.stop_worker(identity.worker_id(), "consumer", self.name, True)
            except Exception:
                pass  # closing must not fail because the store is busy or gone
        self._registered_pid = 0
        await self.store.aclose()

    @asynccontextmanager
    async def claim(
        self,
        timeout: Duration | None = None,
        *,
        lease: Duration | None = None,
        heartbeat: bool | None = None,
    ) -> AsyncIterator[Item | None]:
        """`async with q.claim() as item:` as `Queue.claim`: done when the block ends, failed
        when it raises, put back without costing an attempt when it is cancelled."""
        item = await self.get(timeout, lease=lease)
        if item is None:
            yield None
            return
        claim = self._holding(item, heartbeat)
        try:
            yield item
        except BaseException as exc:
            if not self._let_go(item, claim):
                await self._drive(self._settle_after(item, exc))
            raise
        if not self._let_go(item, claim):
            await self.done(item)

    def consume(
        self,
        *,
        lease: Duration | None = None,
        timeout: Duration | None = None,
        heartbeat: bool | None = None,
        stop_signals: Iterable[int] = (),
    ) -> AsyncConsumer:
        """As `Queue.consume`: `async with q.consume() as jobs: async for item in jobs:`. Each
        job is acked in the same transaction as the next claim; its lease is kept alive while
        the body runs."""
        return self._consumer(AsyncConsumer, lease, timeout, heartbeat, stop_signals)

    def stop(self) -> None:
        """Make consume() return after the job in hand (from the loop's own thread; from a
        signal handler use loop.add_signal_handler, or stop_signals)."""
        self._stop.set()


class AsyncConsumer(ConsumerBase):
    """What `AsyncQueue.consume()` returns: `async for` it; use it in an `async with` block so
    that the end of the block settles the job in hand by how the block ended."""

    queue: AsyncQueue

    async def __aenter__(self) -> AsyncConsumer:
        self._entered = True
        self._install_signals()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.queue._drive(self._drop_in_hand(exc, abandoned=False))
            await self.queue._drive(self._flush())
        finally:
            self._entered = False
            self._restore_signals()
            self.queue._consumers.discard(self)

    async def close(self) -> None:
        """Put back the job in hand (without costing an attempt) and ack the finished one."""
        await self.queue._drive(self._drop_in_hand(None, abandoned=False))
        await self.queue._drive(self._flush())

    def __aiter__(self) -> AsyncIterator[Item]:
        self._start()
        return self._run()

    def _install_signals(self) -> None:
        if not self.stop_signals or self._restore:
            return
        loop = asyncio.get_running_loop()
        for sig in self.stop_signals:
            loop.add_signal_handler(sig, self.queue.stop)
            self._restore[sig] = None

    def _restore_signals(self) -> None:
        restore, self._restore = self._restore, {}
        if restore:
            loop = asyncio.get_running_loop()
            for sig in restore:
                loop.remove_signal_handler(sig)

    async def _run(self) -> AsyncIterator[Item]:
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
                        if not self._entered:  # an `async with` block settles it at its end
                            await q._drive(self._drop_in_hand(None, abandoned=True))
                        raise
                elif isinstance(step, Pause):
                    try:
                        await asyncio.wait_for(q._stop.wait(), step.seconds)
                    except TimeoutError:
                        pass
                else:
                    try:
                        value = await getattr(q.store, step.method)(*step.args)
                    except Exception as exc:
                        error = exc
        finally:
            steps.close()
            self._iterating = False
            if not self._entered:
                self._restore_signals()
