"""A synchronous store used from asyncio: each call runs on a small pool of threads of its own
(each with its own connection), so the event loop never waits on the disk or a lock."""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = 4  # enough for a waiting get() and the heartbeats beside the calls in flight


class ThreadedStore:
    """Every method of the store it wraps, as a coroutine run on the pool."""

    def __init__(self, store: Any, threads: int = THREADS) -> None:
        self._store = store
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.location = store.location
        self.read_only = store.read_only
        self.clock = getattr(store, "clock", None)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def call(*args: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor(), functools.partial(method, *args))

        call.__name__ = name
        return call

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:  # the first call, or the first after aclose()
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="pq-store")
        return self._pool

    async def aclose(self) -> None:
        """Close every pool thread's connection and stop the pool (a later call starts a new
        one)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._shutdown, pool)

    def _shutdown(self, pool: ThreadPoolExecutor) -> None:
        # Each thread closes its own connection (SQLite connections belong to their thread).
        threads = self._threads
        barrier = threading.Barrier(threads, timeout=5)

        def close_mine() -> None:
            self._store.close()
            try:
                barrier.wait()  # one task per thread: none may take a second
            except Exception:
                pass

        futures = [pool.submit(close_mine) for _ in range(threads)]
        for future in futures:
            future.result()
        pool.shutdown(wait=True)
