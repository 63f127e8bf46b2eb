"""pq: a persistent job queue on SQLite (and PostgreSQL).

import pq_core
q = pq_core.open("jobs.sqlite")
q.put({"to": "a@example.com"})
with q.claim() as item:
    ...
"""

from __future__ import annotations

import os
from typing import Any

from pq_core.errors import (
    DiskFull,
    InvalidValue,
    ItemNotFound,
    LeaseLost,
    NotAStore,
    PayloadError,
    PayloadTooLarge,
    QueueError,
    SchemaTooNew,
    StoreError,
    StoreLocked,
    StoreNotFound,
    StoreReadOnly,
)
from pq_core.manager import Manager
from pq_core.model import Event, Item, QueueStats, Stats, Status, SweepReport, Worker
from pq_core.queue import Queue

__all__ = [
    "DiskFull",
    "Event",
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
    "StoreError",
    "StoreLocked",
    "StoreNotFound",
    "StoreReadOnly",
    "SweepReport",
    "Worker",
    "open",
    "persistentQ",
]


def _checked(durability: str, busy_timeout: float) -> float:
    """Validate the store options every backend takes; the busy timeout in seconds."""
    from pq_core.model import parse_duration

    if durability not in ("full", "normal"):
        raise InvalidValue(f"durability must be 'full' or 'normal', not {durability!r}")
    return parse_duration(busy_timeout, "busy_timeout")


class SQLitePersistentQueue(Queue):
    """A queue in a SQLite file (created, mode 0600, if missing).

    Options: queue, durability ("full": a put that returned survives power loss; "normal":
    survives any process crash), lease, max_attempts, max_payload_bytes, busy_timeout (s),
    read_only."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        queue: str = "default",
        *,
        durability: str = "full",
        busy_timeout: float = 30.0,
        read_only: bool = False,
        **options: Any,
    ) -> None:
        from pq_core.store.sqlite import SQLiteStore

        timeout = _checked(durability, busy_timeout)
        store = SQLiteStore(path, durability=durability, busy_timeout=timeout, read_only=read_only)
        super().__init__(store, queue, **options)


class PostgresPersistentQueue(Queue):
    """A queue in a PostgreSQL database (`postgresql://user@host/db`); needs `pq[postgres]`.

    Same options and semantics as SQLitePersistentQueue; durability follows the server's
    own settings (synchronous_commit)."""

    def __init__(
        self,
        url: str,
        queue: str = "default",
        *,
        durability: str = "full",
        busy_timeout: float = 30.0,
        read_only: bool = False,
        **options: Any,
    ) -> None:
        from pq_core.store.postgres import PostgresStore

        timeout = _checked(durability, busy_timeout)
        super().__init__(
            PostgresStore(url, busy_timeout=timeout, read_only=read_only), queue, **options
        )


def open(target: str | os.PathLike[str], **options: Any) -> Queue:  # noqa: A001 - the API's name
    """Open a queue: a path means a SQLite store, a postgresql:// URL a PostgreSQL one."""
    text = os.fspath(target)
    if isinstance(text, str) and text.startswith(("postgresql://", "postgres://")):
        return PostgresPersistentQueue(text, **options)
    return SQLitePersistentQueue(text, **options)


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
