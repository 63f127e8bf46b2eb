"""pq: a persistent job queue on SQLite (and PostgreSQL).

import pq_core
q = pq_core.open("jobs.sqlite")
q.put({"to": "a@example.com"})
with q.claim() as item:
    ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from pq_core.consume import Consumer
from pq_core.errors import (
    ConnectionLost,
    DiskFull,
    InvalidValue,
    ItemNotFound,
    LeaseLost,
    NotAStore,
    PayloadError,
    PayloadTooLarge,
    QueueError,
    SchemaTooNew,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreNotFound,
    StoreReadOnly,
)
from pq_core.manager import Manager
from pq_core.model import (
    CheckReport,
    ErrorGroup,
    Event,
    EventKind,
    Item,
    QueueStats,
    Stats,
    Status,
    SweepReport,
    Worker,
)
from pq_core.queue import Queue

__all__ = [
    "AsyncQueue",
    "CheckReport",
    "ConnectionLost",
    "Consumer",
    "DiskFull",
    "ErrorGroup",
    "Event",
    "EventKind",
    "InvalidValue",
    "Item",
    "ItemNotFound",
    "LeaseLost",
    "Manager",
    "NotAStore",
    "PayloadError",
    "PayloadTooLarge",
    "PostgresPersistentQueue",
    "Queue",
    "QueueError",
    "QueueStats",
    "SQLitePersistentQueue",
    "SchemaTooNew",
    "Stats",
    "Status",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreNotFound",
    "StoreReadOnly",
    "SweepReport",
    "Worker",
    "open",
    "open_async",
    "persistentQ",
]


def _checked(durability: str, busy_timeout: Any) -> float:
    """Validate the store options every backend takes; the busy timeout in seconds."""
    from pq_core.model import parse_duration

    if durability not in ("full", "normal"):
        raise InvalidValue(f"durability must be 'full' or 'normal', not {durability!r}")
    return parse_duration(busy_timeout, "busy_timeout")


class SQLitePersistentQueue(Queue):
    """A queue in a SQLite file (created, mode 0600, if missing and `create` is true).

    Options: queue, durability ("full": a put that returned survives power loss; "normal":
    survives any process crash), lease, max_attempts, max_payload_bytes, busy_timeout (s),
    read_only, create, mode (of a new store file), heartbeat, clock (the store's time)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        queue: str = "default",
        *,
        durability: str = "full",
        busy_timeout: Any = 30.0,
        read_only: bool = False,
        create: bool = True,
        mode: int = 0o600,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        from pq_core.store.sqlite import SQLiteStore

        timeout = _checked(durability, busy_timeout)
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise InvalidValue(f"mode must be file permission bits such as 0o600, not {mode!r}")
        if mode & 0o600 != 0o600:
            raise InvalidValue(f"mode {mode:#o} must let the owner read and write the store")
        if not callable(clock):
            raise InvalidValue(f"clock must be a function giving epoch seconds, not {clock!r}")
        store = SQLiteStore(
            path,
            durability=durability,
            busy_timeout=timeout,
            read_only=bool(read_only),
            create=bool(create),
            mode=mode,
            clock=clock,
        )
        super().__init__(store, queue, **options)


class PostgresPersistentQueue(Queue):
    """A queue in a PostgreSQL database (`postgresql://user@host/db`, `?schema=NAME` for a
    store of its own in that schema); needs the `postgres` extra.

    Same options and semantics as SQLitePersistentQueue, except that the server's clock decides
    every lease, delay and age (`clock` only paces this client's own timers) and durability
    follows the server's own settings (synchronous_commit)."""

    def __init__(
        self,
        url: str,
        queue: str = "default",
        *,
        durability: str = "full",
        busy_timeout: Any = 30.0,
        read_only: bool = False,
        create: bool = True,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ) -> None:
        from pq_core.store.postgres import PostgresStore

        timeout = _checked(durability, busy_timeout)
        store = PostgresStore(
            url, busy_timeout=timeout, read_only=bool(read_only), create=bool(create)
        )
        super().__init__(store, queue, clock=clock, **options)


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open(target: str | os.PathLike[str], **options: Any) -> Queue:  # noqa: A001 - the API's name
    """Open a queue: a path means a SQLite store, a postgresql:// URL a PostgreSQL one."""
    text = os.fspath(target)
    if not isinstance(text, str):
        raise InvalidValue(f"a store is a path or a postgresql:// URL, not {target!r}")
    if is_url(text):
        return PostgresPersistentQueue(text, **options)
    return SQLitePersistentQueue(text, **options)


def __getattr__(name: str) -> Any:
    """`AsyncQueue` and `open_async` load asyncio only when asked for: `import pq_core` stays
    cheap for workers that never use them."""
    if name in ("AsyncQueue", "open_async"):
        from pq_core import aio

        return getattr(aio, name)
    raise AttributeError(f"module 'pq_core' has no attribute {name!r}")


def persistentQ(config: dict[str, Any]) -> Queue:  # noqa: N802 - the design notes' name
    """The design notes' form: {"name": "jobs.sqlite", "type": "sqlite", ...options}."""
    if not isinstance(config, dict) or "name" not in config:
        raise InvalidValue(f"persistentQ takes a dict with a 'name', not {config!r}")
    options = dict(config)
    name = options.pop("name")
    kind = str(options.pop("type", "sqlite")).lower()
    if kind not in ("sqlite", "postgres", "postgresql"):
        raise InvalidValue(f"unknown store type {kind!r}: use 'sqlite' or 'postgresql'")
    return open(name, **options)
