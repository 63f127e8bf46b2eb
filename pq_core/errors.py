"""Every error a user of pq can get, and the one place that maps driver errors onto them."""

from __future__ import annotations

import sqlite3


class QueueError(Exception):
    """Base of every error pq raises on purpose."""


class InvalidValue(QueueError, ValueError):
    """A status, duration, option or id that makes no sense; the message names it."""


class PayloadError(QueueError, TypeError):
    """A payload that is not str, bytes or JSON-serialisable."""


class PayloadTooLarge(QueueError, ValueError):
    """A payload over the store's `max_payload_bytes`."""


class ItemNotFound(QueueError, KeyError):
    """No job with that id in this queue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class LeaseLost(QueueError):
    """A done/fail/heartbeat for a claim that another consumer now holds."""


class StoreError(QueueError):
    """The store cannot be opened or used; the message names its path."""


class StoreNotFound(StoreError, FileNotFoundError):
    pass


class NotAStore(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass


class StoreReadOnly(StoreError):
    pass


class StoreLocked(StoreError):
    pass


class DiskFull(StoreError):
    pass


def from_sqlite(exc: sqlite3.Error, path: str) -> QueueError:
    """The QueueError that tells a user what a sqlite3 error means for their store."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreLocked(f"{path}: store is locked by another process past the busy timeout")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreReadOnly(
            f"{path}: store is read-only here; open it with read_only=True to inspect it"
        )
    if "full" in lowered:
        return DiskFull(f"{path}: disk or store is full; nothing was written ({text})")
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return NotAStore(f"{path}: not a SQLite database ({text})")
    if "unable to open" in lowered:
        return StoreError(f"{path}: cannot open the store ({text})")
    return StoreError(f"{path}: {text}")


def from_postgres(exc: Exception, location: str) -> QueueError:
    """The QueueError that tells a user what a psycopg error means for their store."""
    state = getattr(exc, "sqlstate", None) or ""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if state == "3D000":
        return StoreNotFound(f"{location}: no such database ({text})")
    if state in ("55P03", "40P01", "57014"):
        return StoreLocked(f"{location}: store is locked by another session past the timeout")
    if state == "53100":
        return DiskFull(f"{location}: the database server's disk is full; nothing was written")
    if state in ("25006", "42501"):
        return StoreReadOnly(f"{location}: store is read-only here ({text})")
    if state.startswith("08") or not state:
        return StoreError(f"{location}: cannot reach the database ({text})")
    return StoreError(f"{location}: {text}")
