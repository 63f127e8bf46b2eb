"""The queue against an in-memory model of SPEC 2, driven by Hypothesis.

Every step is one public call (put, get, done, fail, heartbeat, requeue, delete, a manager sweep
or the fake clock moving on); after each, stats() and items() must agree with the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from stores import NO_POSTGRES

import pq_core
from pq_core import Status

from .conftest import TARGETS, FakeClock, ServerClock

LIVE = (Status.READY, Status.IN_PROGRESS)


def back_off(attempts: int) -> float:
    """The documented retry delay: 1 s, 2 s, 4 s … capped at 5 minutes."""
    return float(min(2 ** max(attempts - 1, 0), 300))


@dataclass
class Job:
    id: int
    status: Status
    priority: int
    max_attempts: int
    available_at: float
    created_at: float
    dedup_key: str | None
    attempts: int = 0
    lease_expires_at: float | None = None
    token: str | None = None


class QueueModel(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="pq-model-")
        self.store = ExitStack()
        self.store.callback(shutil.rmtree, self.folder, ignore_errors=True)
        target = self.store.enter_context(TARGETS[self.backend](Path(self.folder)))
        self.clock = ServerClock(target) if self.backend == "postgres" else FakeClock()
        self.q = pq_core.open(target, clock=self.clock, durability="normal")
        self.store.callback(self.q.close)
        self.manager = pq_core.Manager(self.q)
        self.jobs: dict[int, Job] = {}
        self.issued: list[int] = []  # every id ever returned, deleted or not
        self.claims: list[pq_core.Item] = []  # every claim handed out, stale ones included

    def teardown(self) -> None:
        self.store.close()

    # -- helpers ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def claimable(self) -> list[Job]:
        now = self.now()
        ready = [
            j for j in self.jobs.values() if j.status is Status.READY and j.available_at <= now
        ]
        return sorted(ready, key=lambda j: (-j.priority, j.available_at, j.id))

    def live_with_key(self, key: str, other_than: int | None = None) -> Job | None:
        for j in self.jobs.values():
            if j.dedup_key == key and j.status in LIVE and j.id != other_than:
                return j
        return None

    def take(self, job: Job, item: pq_core.Item, lease: float) -> None:
        assert item.id == job.id
        job.status, job.attempts = Status.IN_PROGRESS, job.attempts + 1
        job.token, job.lease_expires_at = item.token, self.now() + lease
        assert item.attempts == job.attempts
        self.claims.append(item)

    # -- producer --------------------------------------------------------------------------------

    @rule(
        priority=st.integers(-2, 2),
        delay=st.sampled_from([0, 0, 0, 5]),
        max_attempts=st.integers(1, 4),
        key=st.sampled_from([None, None, "a", "b"]),
    )
    def put(self, priority: int, delay: float, max_attempts: int, key: str | None) -> None:
        job_id = self.q.put(
            {"n": len(self.issued)},
            priority=priority,
            delay=delay,
            max_attempts=max_attempts,
            dedup_key=key,
        )
        live = self.live_with_key(key) if key else None
        if live is not None:
            assert job_id == live.id
            return
        # Ids are never those of a job still in the store; a deleted newest job's id may
        # come back (its claims' tokens keep a late ack from touching the new job).
        assert job_id not in self.jobs and all(job_id > i for i in self.jobs)
        now = self.now()
        self.jobs[job_id] = Job(job_id, Status.READY, priority, max_attempts, now + delay, now, key)
        self.issued.append(job_id)

    @rule(n=st.integers(1, 2))
    def put_many(self, n: int) -> None:
        ids = self.q.put_many(range(n), max_attempts=2)
        assert len(ids) == n
        for job_id in ids:
            self.jobs[job_id] = Job(job_id, Status.READY, 0, 2, self.now(), self.now(), None)
            self.issued.append(job_id)

    # -- consumer --------------------------------------------------------------------------------

    @rule(lease=st.sampled_from([5, 30]))
    def get(self, lease: float) -> None:
        expected = self.claimable()
        item = self.q.get(lease=lease)
        if not expected:
            assert item is None
            return
        assert item is not None
        self.take(expected[0], item, lease)

    @rule(n=st.integers(1, 3), lease=st.sampled_from([5, 30]))
    def get_many(self, n: int, lease: float) -> None:
        expected = self.claimable()[:n]
        items = self.q.get_many(n, lease=lease)
        assert [i.id for i in items] == [j.id for j in expected]
        for job, item in zip(expected, items, strict=True):
            self.take(job, item, lease)

    def claim_at(self, index: int) -> pq_core.Item:
        return self.claims[index % len(self.claims)]

    @precondition(lambda self: self.claims)
    @rule(index=st.integers(0, 1000))
    def done(self, index: int) -> None:
        item = self.claim_at(index)
        job = self.jobs.get(item.id)
        if job is None:
            with pytest.raises(pq_core.ItemNotFound):
                self.q.done(item)
        elif job.token != item.token:  # claimed again since (or another job took the id)
            with pytest.raises(pq_core.LeaseLost):
                self.q.done(item)
        else:
            self.q.done(item)  # held, or a late done for a job not claimed since: marked done
            if job.status is not Status.DONE:
                job.status, job.lease_expires_at = Status.DONE, None

    @precondition(lambda self: self.claims)
    @rule(index=st.integers(0, 1000))
    def fail(self, index: int) -> None:
        item = self.claim_at(index)
        job = self.jobs.get(item.id)
        if job is None:
            with pytest.raises(pq_core.ItemNotFound):
                self.q.fail(item, "gone")
        elif job.token != item.token:
            with pytest.raises(pq_core.LeaseLost):
                self.q.fail(item, "lost")
        elif job.status is Status.IN_PROGRESS:
            went = self.q.fail(item, "failed")
            expected = Status.DEAD if job.attempts >= job.max_attempts else Status.READY
            assert went is expected
            job.status, job.lease_expires_at = expected, None
            job.available_at = self.now() + back_off(job.attempts)
        else:
            assert self.q.fail(item, "too late") is job.status  # no longer held: unchanged

    @precondition(lambda self: self.claims)
    @rule(index=st.integers(0, 1000))
    def heartbeat(self, index: int) -> None:
        i = index % len(self.claims)
        item = self.claims[i]
        job = self.jobs.get(item.id)
        if job is None:
            with pytest.raises(pq_core.ItemNotFound):
                self.q.heartbeat(item)
            return
        if job.status is not Status.IN_PROGRESS or job.token != item.token:
            with pytest.raises(pq_core.LeaseLost):
                self.q.heartbeat(item)
            return
        length = item.lease_expires_at.timestamp() - item.updated_at.timestamp()
        self.claims[i] = self.q.heartbeat(item)
        job.lease_expires_at = self.now() + length
        assert self.claims[i].lease_expires_at.timestamp() == pytest.approx(job.lease_expires_at)

    # -- operator and manager --------------------------------------------------------------------

    @precondition(lambda self: self.issued)
    @rule(index=st.integers(0, 1000))
    def requeue(self, index: int) -> None:
        job_id = self.issued[index % len(self.issued)]
        job = self.jobs.get(job_id)
        changed = self.q.requeue([job_id])
        if job is None or job.status is Status.READY:
            assert changed == 0
            return
        assert changed == 1
        if job.dedup_key and self.live_with_key(job.dedup_key, other_than=job.id):
            job.dedup_key = None  # the newer live job keeps the key
        job.status, job.attempts, job.available_at = Status.READY, 0, self.now()
        job.lease_expires_at = None  # the token stays: a late done of that claim still counts

    @precondition(lambda self: self.issued)
    @rule(index=st.integers(0, 1000))
    def delete(self, index: int) -> None:
        job_id = self.issued[index % len(self.issued)]
        assert self.q.delete([job_id]) == (1 if self.jobs.pop(job_id, None) else 0)

    @rule(seconds=st.sampled_from([0.5, 1, 3, 10, 40]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        requeued = dead = 0
        for job in self.jobs.values():
            if job.status is Status.IN_PROGRESS and job.lease_expires_at <= self.now():
                if job.attempts >= job.max_attempts:
                    job.status, dead = Status.DEAD, dead + 1
                else:
                    job.status, requeued = Status.READY, requeued + 1
                job.available_at, job.lease_expires_at = self.now(), None
        report = self.manager.sweep()
        assert (report.requeued, report.dead) == (requeued, dead)

    # -- what must always hold -------------------------------------------------------------------

    @invariant()
    def stats_match_the_model(self) -> None:
        stats = self.q.stats()[self.q.name]
        expected = dict.fromkeys(Status, 0)
        for job in self.jobs.values():
            expected[job.status] += 1
        assert stats.counts == expected
        ready = [j.created_at for j in self.jobs.values() if j.status is Status.READY]
        if ready:
            assert stats.oldest_ready_age == pytest.approx(self.now() - min(ready))
        else:
            assert stats.oldest_ready_age is None

    @invariant()
    def items_match_the_model(self) -> None:
        stored = [
            (
                i.id,
                i.status,
                i.attempts,
                i.priority,
                i.dedup_key,
                i.available_at.timestamp(),
                i.lease_expires_at and i.lease_expires_at.timestamp(),
            )
            for i in self.q.items(limit=1000, newest_first=False)
        ]
        model = [
            (
                j.id,
                j.status,
                j.attempts,
                j.priority,
                j.dedup_key,
                j.available_at,
                j.lease_expires_at,
            )
            for j in sorted(self.jobs.values(), key=lambda job: job.id)
        ]
        assert stored == model


class PostgresQueueModel(QueueModel):
    backend = "postgres"


for model, examples in ((QueueModel, 50), (PostgresQueueModel, 25)):
    model.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
test_the_queue_behaves_like_its_model_on_sqlite = QueueModel.TestCase
test_the_queue_behaves_like_its_model_on_postgres = pytest.mark.skipif(
    not os.environ.get("PQ_TEST_POSTGRES_URL") and os.environ.get("PQ_REQUIRE_POSTGRES") != "1",
    reason=NO_POSTGRES,
)(PostgresQueueModel.TestCase)
