"""pq's AsyncQueue (`await pq_core.open_async(...)`), driven from synchronous benchmark code.

Works before and after AsyncQueue exists: `missing()` says why it cannot be measured, and the
workloads then report the row as skipped with that note instead of failing. Calls that may be
plain or coroutines in the final API (`stop`, `close`) are awaited only when they return an
awaitable.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

UNAVAILABLE = "AsyncQueue not available: pq_core has no open_async"


def missing() -> str | None:
    import pq_core

    return None if hasattr(pq_core, "open_async") else UNAVAILABLE


async def _settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class AsyncPQ:
    """One AsyncQueue on an event loop of its own, opened outside any timed section."""

    def __init__(self, target: str, **options: Any) -> None:
        import pq_core

        self.loop = asyncio.new_event_loop()
        self.q = self.loop.run_until_complete(pq_core.open_async(target, **options))

    def consume(
        self,
        n: int,
        deadline: float,
        record: Callable[[Any], None] | None = None,
        stop: Any = None,
    ) -> int:
        """Take jobs through `async for item in q.consume()` until n are taken, the deadline
        (perf_counter) passes or `stop` (an Event of another process) is set; the loop is left
        through stop(), so the last job is acked as the loop ends. Returns how many."""
        return self.loop.run_until_complete(self._consume(n, deadline, record, stop))

    async def _consume(
        self, n: int, deadline: float, record: Callable[[Any], None] | None, stop: Any
    ) -> int:
        q, done = self.q, 0
        watcher = asyncio.ensure_future(self._watch(stop)) if stop is not None else None
        try:
            async for item in q.consume():
                done += 1
                if record is not None:
                    record(item.payload)
                if done >= n or time.perf_counter() > deadline:
                    await _settle(q.stop())
        finally:
            if watcher is not None:
                watcher.cancel()
        return done

    async def _watch(self, stop: Any) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.01)
        await _settle(self.q.stop())

    def close(self) -> None:
        try:
            self.loop.run_until_complete(_settle(self.q.close()))
        finally:
            self.loop.close()
