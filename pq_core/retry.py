"""The retry policy, in one place: how long a failed job waits, and when it is dead.

Consumers (`fail`, a failing `claim()` body) and the manager (a lease that ran out, a consumer
that is gone) both ask here, so the two cannot disagree.
"""

from __future__ import annotations

from pq_core.model import Status

MAX_BACKOFF = 300.0


def retry_delay(attempts: int) -> float:
    """Back-off before a failed job is tried again: 1 s, 2 s, 4 s … capped at 5 minutes."""
    return float(min(2 ** min(max(attempts - 1, 0), 16), MAX_BACKOFF))


def after_failure(attempts: int, max_attempts: int) -> Status:
    """Where an unfinished job goes: dead once it has had max_attempts attempts, else ready."""
    return Status.DEAD if attempts >= max_attempts else Status.READY
