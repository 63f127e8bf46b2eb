"""Every error a user of pq can get, and the one place that maps driver errors onto them."""

from __future__ import annotations

import re
import sqlite3


class QueueError(Exception):
    """Base of every error pq raises on purpose."""


class InvalidValue(QueueError, ValueError):
    """A status, duration, option or id that makes no sense; the message names it."""


class PayloadError(QueueError, TypeError):
    """A payload that is not str, bytes or JSON-serialisable, nested too deep, or not valid
    text (a lone surrogate)."""


class PayloadTooLarge(QueueError, ValueError):
    """A payload over the store's `max_payload_bytes`."""


class ItemNotFound(QueueError, KeyError):
    """No job with that id (in that queue)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class LeaseLost(QueueError):
    """A done/fail/heartbeat for a claim that is no longer this consumer's: the job was claimed
    again since, or the token was never handed out. Nothing changed."""


class StoreError(QueueError):
    """The store cannot be opened or used; the message names its path (or URL, no password)."""


class StoreNotFound(StoreError, FileNotFoundError):
    pass


class NotAStore(StoreError):
    pass


class StoreCorrupt(StoreError):
    """The store's file is damaged. Nothing was written by the call that found it."""


class SchemaTooNew(StoreError):
    pass


class StoreReadOnly(StoreError):
    pass


class StoreLocked(StoreError):
    pass


class DiskFull(StoreError):
    pass


class ConnectionLost(StoreError):
    """The connection to the database server broke during the call. The next call connects
    again. A write that was under way may or may not have committed: a `put` may have stored
    its job (use a dedup_key to make a retry safe); a claim, if it committed, comes back when
    its lease runs out; done/fail/heartbeat can simply be called again."""


def from_sqlite(exc: sqlite3.Error, path: str) -> QueueError:
    """The QueueError that tells a user what a sqlite3 error means for their store."""
    text = str(exc)
    lowered = text.lower()
    name = getattr(exc, "sqlite_errorname", "") or ""
    if "locked" in lowered or "busy" in lowered:
        return StoreLocked(f"{path}: store is locked by another process past the busy timeout")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreReadOnly(
            f"{path}: store is read-only here; open it with read_only=True to inspect it"
        )
    if (
        name.startswith("SQLITE_FULL")
        or "disk is full" in lowered
        or "database or disk is full" in lowered
    ):
        return DiskFull(f"{path}: disk or store is full; nothing was written ({text})")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or (
        "malformed" in lowered or "not a database" in lowered
    ):
        # The file began as a pq store (the caller checked its header), so this is damage.
        return StoreCorrupt(
            f"{path}: the store is damaged ({text}); nothing was written. "
            "Restore it from a backup, or salvage what is readable with sqlite3's .recover"
        )
    if "unable to open" in lowered:
        return StoreError(f"{path}: cannot open the store ({text})")
    if "i/o error" in lowered or name.startswith("SQLITE_IOERR"):
        return StoreError(f"{path}: the disk failed to read or write the store ({text})")
    return StoreError(f"{path}: {text}")


# A URL's `user:password@` (the password may hold `@`: up to the last one before the path),
# and a `password=` keyword, quoted or not.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^\s/]*@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>password\s*=\s*)('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;]*)", re.IGNORECASE
)


def redact(text: str) -> str:
    """`text` with any password in it replaced: `user:pw@` becomes `user:***@`, `password=pw`
    becomes `password=***`. For every message, repr and line that names a store."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def from_postgres(exc: Exception, location: str) -> QueueError:
    """The QueueError that tells a user what a psycopg error means for their store."""
    state = getattr(exc, "sqlstate", None) or ""
    text = redact(" ".join(str(exc).split()) or type(exc).__name__)[:500]
    if state == "3D000":
        return StoreNotFound(f"{location}: no such database ({text})")
    if state in ("55P03", "40P01", "57014"):
        return StoreLocked(f"{location}: store is locked by another session past the timeout")
    if state == "53100":
        return DiskFull(f"{location}: the database server's disk is full; nothing was written")
    if state in ("25006", "42501"):
        return StoreReadOnly(f"{location}: store is read-only here ({text})")
    if state in ("28P01", "28000"):
        return StoreError(f"{location}: the server refused the login ({text})")
    refused = None if state else _refused_by_driver(exc)
    if refused is not None:
        return refused(f"{location}: {text}")
    if state.startswith(("08", "57P")) or not state:
        return ConnectionLost(f"{location}: the connection to the database was lost ({text})")
    return StoreError(f"{location}: {text}")


def _refused_by_driver(exc: Exception) -> type[QueueError] | None:
    """For an error psycopg raised itself, before sending anything, about a value (a NUL that
    PostgreSQL text cannot hold) or a statement: the QueueError to raise, the connection being
    fine. None for anything else."""
    try:
        import psycopg
    except ImportError:
        return None
    if not isinstance(exc, psycopg.Error) or isinstance(
        exc, (psycopg.OperationalError, psycopg.InterfaceError)
    ):
        return None
    return InvalidValue if isinstance(exc, psycopg.DataError) else StoreError
