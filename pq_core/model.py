"""The queue's vocabulary: statuses, items, events, workers, durations and the limits of input.
Pure, no I/O."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pq_core.errors import InvalidValue

Duration = int | float | timedelta | str

# -- limits of input (README "Limits") ---------------------------------------------------------

MAX_DURATION = 100 * 365 * 86400.0  # 100 years: any delay, lease, age or timeout
MAX_DEPTH = 100  # nesting of lists and dicts in a JSON payload
MAX_QUEUE_NAME = 128  # characters
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1  # a 32-bit integer on every backend
MAX_COUNT = 2**31 - 1  # max_attempts, limits, page sizes
MAX_ID = 2**63 - 1  # job ids


class Status(enum.StrEnum):
    """Where a job is in its life. Old names from the design notes are accepted by `parse`."""

    READY = "ready"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DEAD = "dead"

    @classmethod
    def parse(cls, name: str | Status) -> Status:
        """Accept a status case-insensitively, or one of the design notes' old names."""
        if isinstance(name, Status):
            return name
        if isinstance(name, str):
            key = name.strip().lower().replace("-", "_").replace(" ", "_")
            if key in _ALIASES:
                return _ALIASES[key]
        valid = ", ".join(s.value for s in cls)
        old = ", ".join(sorted(k for k in _ALIASES if k not in {s.value for s in cls}))
        raise InvalidValue(f"unknown status {name!r}: use one of {valid} (old names: {old})")


_ALIASES: dict[str, Status] = {
    "ready": Status.READY,
    "unprocessed": Status.READY,
    "in_progress": Status.IN_PROGRESS,
    "inprogress": Status.IN_PROGRESS,
    "under_process": Status.IN_PROGRESS,
    "done": Status.DONE,
    "processed": Status.DONE,
    "dead": Status.DEAD,
}


class EventKind(enum.StrEnum):
    """What an event records. `FAILED` belongs to a job's history only, not the activity log."""

    REQUEUE = "requeue"
    DEAD = "dead"
    DELETE = "delete"
    PURGE = "purge"
    PAUSE = "pause"
    RESUME = "resume"
    RUN_NOW = "run_now"
    FAILED = "failed"


def to_datetime(ts: float | None) -> datetime | None:
    """A stored epoch-seconds time as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the manager or an operator did (or a job's failure, in its history)."""

    id: int
    at: datetime
    queue: str
    kind: str
    actor: str
    count: int
    detail: str
    job_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One job as it was when read. `token` identifies the claim that done/fail/heartbeat check."""

    id: int
    queue: str
    payload: Any
    status: Status
    priority: int
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    available_at: datetime
    lease_expires_at: datetime | None
    worker: str | None
    last_error: str | None
    dedup_key: str | None
    token: str | None = field(default=None, repr=False)
    history: tuple[Event, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One named queue. `counts[READY]` includes the `scheduled` jobs (ready, but not before a
    later time: delayed or backing off); `oldest_ready_age` is seconds, None when nothing is
    ready. Per-minute figures cover the last 30 minutes, oldest first, the current minute last."""

    queue: str
    counts: dict[Status, int]
    oldest_ready_age: float | None
    done_per_minute: tuple[int, ...]
    failed_per_minute: tuple[int, ...] = ()
    scheduled: int = 0
    paused: bool = False

    @property
    def available(self) -> int:
        """Ready jobs that a consumer could claim now."""
        return self.counts[Status.READY] - self.scheduled

    @property
    def in_flight(self) -> int:
        return self.counts[Status.IN_PROGRESS]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Stats:
    """`stats()`: one QueueStats per queue that exists in the store, read in one snapshot, and
    the store's own time of reading (the server's, on PostgreSQL)."""

    queues: dict[str, QueueStats]
    at: datetime

    def __getitem__(self, queue: str) -> QueueStats:
        """One queue's stats; all zero for a queue that does not exist (yet)."""
        found = self.queues.get(queue)
        if found is not None:
            return found
        zero = (0,) * 30
        return QueueStats(queue, dict.fromkeys(Status, 0), None, zero, zero)

    @property
    def counts(self) -> dict[Status, int]:
        """Counts per status across every queue."""
        total = dict.fromkeys(Status, 0)
        for qs in self.queues.values():
            for status, n in qs.counts.items():
                total[status] += n
        return total


@dataclass(frozen=True, slots=True)
class Worker:
    """A registered consumer or manager: when it was last heard from, the jobs it holds now
    (with the time it claimed the oldest of them) and how many it finished in the last minute."""

    id: str
    kind: str
    queue: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    alive: bool
    jobs: tuple[int, ...] = ()
    busy_since: datetime | None = None
    done_last_minute: int = 0


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Failed (retrying) and dead jobs that share an error signature."""

    signature: str
    count: int
    dead: int
    retrying: int
    newest_at: datetime
    queues: tuple[str, ...]
    example: str


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one manager sweep changed."""

    requeued: int = 0
    dead: int = 0
    crashed_workers: int = 0
    checkpointed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.requeued or self.dead or self.crashed_workers)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """`check()`: the store's own integrity check and the counters compared with the rows."""

    ok: bool
    problems: tuple[str, ...]


# -- durations ---------------------------------------------------------------------------------

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|)\s*$", re.IGNORECASE | re.ASCII)


def parse_duration(value: Duration, name: str = "duration") -> float:
    """Seconds from seconds, a timedelta, or '90s' / '5m' / '1h' / '7d'. Refuses negatives,
    empty or non-numeric text, anything that is not a number, and more than 100 years."""
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be seconds or a duration like '5m', not {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise InvalidValue(
                f"{name} {value!r} is not a duration: use seconds or a number with "
                "s, m, h, d or w, such as '90s', '5m', '1h', '7d'"
            )
        number, unit = match.groups()
        unit = unit.lower()
        seconds = float(number) / 1000 if unit == "ms" else float(number) * _UNITS[unit]
    else:
        raise InvalidValue(f"{name} must be seconds or a duration like '5m', not {value!r}")
    if math.isnan(seconds) or seconds < 0:
        raise InvalidValue(f"{name} must be a non-negative duration, not {value!r}")
    if seconds > MAX_DURATION:
        raise InvalidValue(
            f"{name} {value!r} is too long: at most 100 years ({MAX_DURATION:.0f} s)"
        )
    return seconds


def duration_text(seconds: float) -> str:
    """A duration as people write it: 45s, 5m, 1h30m, 7d."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts[:2])


# -- whole numbers and names -------------------------------------------------------------------


def positive_int(value: Any, name: str, maximum: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(f"{name} must be a whole number of at least 1, not {value!r}")
    if value > maximum:
        raise InvalidValue(f"{name} must be at most {maximum}, not {value!r}")
    return value


def priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"priority must be a whole number, not {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidValue(
            f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, not {value!r}"
        )
    return value


_DIGITS = re.compile(r"\s*\d+\s*", re.ASCII)


def job_id(value: Any) -> int:
    """A job id: a whole number from 1 to 2**63 - 1, or its decimal text."""
    if isinstance(value, Item):
        return value.id
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidValue(f"job id must be a whole number from 1 to {MAX_ID}, not {value!r}")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def queue_name(value: Any) -> str:
    """A queue's name: 1 to 128 characters, not only spaces, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"queue name must be a non-empty string, not {value!r}")
    if len(value) > MAX_QUEUE_NAME:
        raise InvalidValue(f"queue name is {len(value)} characters long: at most {MAX_QUEUE_NAME}")
    if _CONTROL.search(value) or not value.isprintable():
        raise InvalidValue(f"queue name {value!r} has control characters (printable text only)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"queue name {value!r} is not valid text (a lone surrogate)") from None
    return value


# -- error signatures --------------------------------------------------------------------------

_SIG_RULES = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "…"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "0x…"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "…"),  # hex ids
    (re.compile(r"\d+(?:\.\d+)?"), "N"),
)
SIGNATURE_CHARS = 200


def error_line(error: str | None) -> str:
    """The line of an error that says most: the last one (a traceback ends with the exception)."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def error_signature(error: str | None) -> str | None:
    """What failures have in common: the meaningful line of the error with numbers, hex ids and
    uuids replaced, so `timeout after 31 s on job 17` and `… 29 s on job 4` group together."""
    line = error_line(error)
    if not line:
        return None
    for pattern, replacement in _SIG_RULES:
        line = pattern.sub(replacement, line)
    return line[:SIGNATURE_CHARS]
