"""A consumer killed while holding a one-hour lease has its job back within two sweeps."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import pq_core
from pq_core import Status

from .conftest import spawn
from .roles import read_ids

INTERVAL = 0.5


class WatchedManager(pq_core.Manager):
    """A real manager that notes, after each sweep, where the watched job stood."""

    def __init__(self, queue: pq_core.Queue, job_id: int, **options: object) -> None:
        super().__init__(queue, **options)
        self.job_id = job_id
        self.started = 0
        self.after: list[Status] = []  # the job's status after each finished sweep

    def sweep(self) -> pq_core.SweepReport:
        self.started += 1
        report = super().sweep()
        self.after.append(self.queue.item(self.job_id).status)
        return report


def wait_for(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_consumer_killed_holding_a_one_hour_lease_has_its_job_back_within_two_intervals(
    tmp_path: Path, target: str
) -> None:
    db = target
    q = pq_core.open(db)
    job_id = q.put("held by a consumer that will die")
    record = tmp_path / "held"
    holder = spawn("holder", db, log=record, stderr=tmp_path / "holder.err")
    manager = WatchedManager(q, job_id, interval=INTERVAL)
    thread = threading.Thread(target=manager.run, daemon=True)
    try:
        wait_for(lambda: record.exists() and read_ids(record) == [job_id], "the claim")
        item = q.item(job_id)
        assert item.status is Status.IN_PROGRESS
        assert item.lease_expires_at.timestamp() - time.time() > 3000
        thread.start()
        wait_for(lambda: len(manager.after) >= 2, "two sweeps")
        assert set(manager.after) == {Status.IN_PROGRESS}  # a live consumer keeps its job

        holder.kill()
        holder.wait(timeout=30)
        killed_at, sweeps_begun = time.monotonic(), manager.started

        wait_for(lambda: Status.READY in manager.after, "the job to come back")
        back_after = manager.after.index(Status.READY) + 1
        took = time.monotonic() - killed_at
    finally:
        manager.stop()
        if holder.poll() is None:
            holder.kill()
        thread.join(timeout=30)
    # The sweep running when the kill landed may miss it; the next one must not.
    assert back_after - sweeps_begun <= 2, (
        f"back only after sweep {back_after}; {sweeps_begun} had begun before the kill"
    )
    assert took < 60, f"took {took:.1f} s"
    item = q.item(job_id)
    assert item.status is Status.READY and "is gone" in item.last_error
    [event] = [e for e in q.events() if e.kind == "requeue"]
    assert event.job_ids == (job_id,) and event.actor.startswith("manager")
    assert [w for w in q.workers() if w.pid == holder.pid and w.alive] == []
    with q.claim() as again:
        assert again.id == job_id and again.attempts == 2
    q.close()
