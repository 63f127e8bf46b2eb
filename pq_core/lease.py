"""Keeping the leases of jobs in hand alive while `claim()` and `consume()` bodies run.

One thread per queue object extends every held lease at a third of its length, so a job that
runs longer than its lease is not taken back while its consumer is alive. The thread lives
only while something is held; it never touches a job the body has already settled.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pq_core.errors import ItemNotFound, LeaseLost, QueueError
from pq_core.model import Item

Extend = Callable[[Item], Item]  # the queue's heartbeat: the item with its new lease, or raises

RETRY_SOON = 1.0  # seconds before a heartbeat that failed on a busy store is tried again
IDLE_END = 30.0  # seconds with nothing to keep before the thread ends


@dataclass
class Held:
    """One job whose lease is kept: the latest Item (with its lease) and when to extend next."""

    item: Item
    due: float
    every: float
    lost: bool = False
    error: str | None = field(default=None, repr=False)


def beat_interval(item: Item) -> float:
    """A third of the lease this claim was granted (never less than 50 ms)."""
    if item.lease_expires_at is None:
        return 1.0
    granted = item.lease_expires_at.timestamp() - item.updated_at.timestamp()
    return max(granted / 3, 0.05)


class LeaseKeeper:
    """Extends the leases of held jobs on a thread of its own. Holding and forgetting a job
    costs no thread switch: the thread wakes only when a lease is due (or it has been idle a
    while, when it closes its connection and ends; a later hold starts it again)."""

    def __init__(
        self,
        extend: Extend,
        on_beat: Callable[[], None] = lambda: None,
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self._extend = extend
        self._on_beat = on_beat
        self._on_idle = on_idle  # on its way out: close this thread's connection
        self._held: dict[tuple[int, str], Held] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._wakes_at = float("inf")  # when the thread will look next, if it waits

    def hold(self, item: Item) -> Held:
        """Start keeping this claim's lease alive."""
        every = beat_interval(item)
        held = Held(item, time.monotonic() + every, every)
        with self._cond:
            self._held[(item.id, item.token or "")] = held
            if not self._start() and held.due < self._wakes_at:
                self._cond.notify()  # due before the thread would look: wake it now
        return held

    def forget(self, item: Item) -> Held | None:
        """Stop keeping it (the body ended); what was kept, with any lease it lost."""
        with self._cond:
            return self._held.pop((item.id, item.token or ""), None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._held.clear()
            self._cond.notify()
        thread = self._thread
        mine = self._pid == os.getpid()
        if thread is not None and thread is not threading.current_thread() and mine:
            thread.join(timeout=5)
        self._thread = None

    def _start(self) -> bool:
        """Start the thread unless it runs (in this process); whether it was started."""
        alive = self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()
        if alive:
            return False
        self._closed = False
        self._pid = os.getpid()
        self._wakes_at = float("inf")
        self._thread = threading.Thread(target=self._run, name="pq-lease-keeper", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            try:
                self._on_idle()
            except Exception:
                pass  # closing a connection must not fail the thread

    def _serve(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
            if due is None:
                return
            for held in due:
                self._beat(held)
            try:
                self._on_beat()
            except QueueError:
                pass  # the registry heartbeat is best effort

    def _next_due(self) -> list[Held] | None:
        """Wait (holding the condition) until some lease is due; None when there is nothing
        to keep (closed, or idle for a while)."""
        idle_since = time.monotonic()
        while not self._closed:
            now = time.monotonic()
            live = [h for h in self._held.values() if not h.lost]
            due = [h for h in live if h.due <= now]
            if due:
                self._wakes_at = float("inf")
                return due
            if not live and now - idle_since >= IDLE_END:
                self._thread = None
                return None
            if live:
                idle_since = now
            self._wakes_at = min((h.due for h in live), default=now + IDLE_END)
            self._cond.wait(timeout=max(self._wakes_at - now, 0.01))
        return None

    def _beat(self, held: Held) -> None:
        key = (held.item.id, held.item.token or "")
        try:
            item = self._extend(held.item)
        except (LeaseLost, ItemNotFound) as exc:
            held.lost, held.error = True, str(exc)
            return
        except QueueError:
            held.due = time.monotonic() + min(held.every, RETRY_SOON)  # busy or reconnecting
            return
        with self._cond:
            if key in self._held:  # not forgotten meanwhile
                held.item = item
                held.due = time.monotonic() + held.every


class AsyncLeaseKeeper:
    """The same, for an asyncio queue: one task extends every held lease at a third of its
    length, never blocking the event loop."""

    def __init__(self, extend: Callable[[Item], Any]) -> None:
        self._extend = extend  # a coroutine function: the queue's heartbeat
        self._held: dict[tuple[int, str], Held] = {}
        self._task: Any = None
        self._wake: Any = None

    def hold(self, item: Item) -> Held:
        import asyncio

        every = beat_interval(item)
        held = Held(item, time.monotonic() + every, every)
        self._held[(item.id, item.token or "")] = held
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._wake.set()
        return held

    def forget(self, item: Item) -> Held | None:
        return self._held.pop((item.id, item.token or ""), None)

    async def close(self) -> None:
        import asyncio

        self._held.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        import asyncio

        while self._held:
            now = time.monotonic()
            for key, held in list(self._held.items()):
                if held.due <= now and not held.lost:
                    await self._beat(key, held)
            live = [h.due for h in self._held.values() if not h.lost]
            if not live:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(min(live) - time.monotonic(), 0.01))
            except TimeoutError:
                pass

    async def _beat(self, key: tuple[int, str], held: Held) -> None:
        try:
            item = await self._extend(held.item)
        except (LeaseLost, ItemNotFound) as exc:
            held.lost, held.error = True, str(exc)
            return
        except QueueError:
            held.due = time.monotonic() + min(held.every, RETRY_SOON)
            return
        if key in self._held:
            held.item = item
            held.due = time.monotonic() + held.every
