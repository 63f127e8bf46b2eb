"""The queue's vocabulary: statuses, items, events, workers and durations. Pure, no I/O."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pq_core.errors import InvalidValue

Duration = int | float | timedelta | str


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
    """Counts for one named queue; `oldest_ready_age` is seconds, None when nothing is ready."""

    queue: str
    counts: dict[Status, int]
    oldest_ready_age: float | None
    done_per_minute: tuple[int, ...]

    @property
    def in_flight(self) -> int:
        return self.counts[Status.IN_PROGRESS]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Stats:
    """`stats()`: one QueueStats per named queue in the store, read in one snapshot."""

    queues: dict[str, QueueStats]
    at: datetime

    def __getitem__(self, queue: str) -> QueueStats:
        return self.queues[queue]

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
    """A registered consumer or manager and when it was last heard from."""

    id: str
    kind: str
    queue: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    alive: bool


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


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|)\s*$", re.IGNORECASE)


def parse_duration(value: Duration, name: str = "duration") -> float:
    """Seconds from seconds, a timedelta, or '90s' / '5m' / '1h' / '7d'. Rejects negatives."""
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be seconds or a duration like '5m', not {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
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
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise InvalidValue(f"{name} must be a finite, non-negative duration, not {value!r}")
    return seconds


MAX_INT = 2**63 - 1  # the largest whole number a store keeps


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(f"{name} must be a whole number of at least 1, not {value!r}")
    if value > MAX_INT:
        raise InvalidValue(f"{name} must be at most {MAX_INT}, not {value!r}")
    return value
