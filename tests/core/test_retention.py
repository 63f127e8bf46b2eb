"""Nothing grows without bound (issue 7 point 8): events have a retention the manager applies,
purging jobs removes what only referred to them, registrations of gone workers are forgotten,
and one-shot processes leave none."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pq_core

from .conftest import FakeClock, OpenQueue

DAY = 86400


def rows(backend: str, table: str) -> int:
    """How many rows a table of the store holds (read behind pq's back)."""
    if backend.startswith("postgresql://"):
        import psycopg

        from pq_core.store.postgres import Target

        target = Target(backend)
        with psycopg.connect(target.conninfo) as conn:
            conn.execute(f'SET search_path TO "{target.schema}"')
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    import sqlite3

    conn = sqlite3.connect(backend)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_the_manager_drops_events_older_than_their_retention(
    queue: pq_core.Queue, clock: FakeClock, backend: str
) -> None:
    ids = queue.put_many(range(3))
    queue.done_many(queue.get_many(3))
    queue.requeue(ids[:2])
    queue.delete(ids[2:])
    assert len(queue.events(queue=queue.name)) == 2
    clock.advance(29 * DAY)
    queue.requeue(queue.get_many(1))
    pq_core.Manager(queue).sweep()
    assert len(queue.events(queue=queue.name)) == 3  # nothing is 30 days old yet
    clock.advance(2 * DAY)
    pq_core.Manager(queue).sweep()
    assert [e.detail for e in queue.events(queue=queue.name)] == [f"requeued 1 job(s): {ids[0]}"]
    assert rows(backend, "pq_event_jobs") == 1
    clock.advance(DAY)
    pq_core.Manager(queue, event_retention="1d").sweep()
    assert queue.events(queue=queue.name) == []


def test_purging_jobs_removes_their_history_and_links(
    queue: pq_core.Queue, clock: FakeClock, backend: str
) -> None:
    queue.put_many(range(1000), max_attempts=1)
    for item in queue.get_many(1000):
        queue.fail(item, "boom")  # dead, with a failure in its history
    queue.requeue([i.id for i in queue.items("dead", limit=1000)])
    queue.done_many(queue.get_many(1000))
    assert rows(backend, "pq_history") == 1000
    clock.advance(DAY)
    assert queue.purge(older_than="1h") == 1000
    assert rows(backend, "pq_history") == 0
    assert rows(backend, "pq_event_jobs") == 0
    assert [e.kind for e in queue.events(queue=queue.name)] == ["purge", "requeue"]


def test_registrations_of_gone_workers_are_forgotten_within_an_hour(
    open_queue: OpenQueue, clock: FakeClock, backend: str
) -> None:
    q = open_queue()
    script = textwrap.dedent(
        f"""
        import os, pq_core
        q = pq_core.open({backend!r})
        q.put("x")
        q.get(lease=60)
        os._exit(0)  # gone without a word
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    [gone] = q.workers()
    assert not gone.alive and gone.jobs
    manager = pq_core.Manager(q, interval=1)
    manager.sweep()  # takes its job back; the registration stays a while, for the operator
    assert [w.id for w in q.workers()] == [gone.id]
    clock.advance(3601)
    for _ in range(pq_core.manager.MAINTAIN_EVERY):
        manager.sweep()
    assert [w for w in q.workers() if w.kind == "consumer"] == []


def test_a_one_shot_process_leaves_no_registration(backend: str) -> None:
    script = textwrap.dedent(
        f"""
        import pq_core
        with pq_core.open({backend!r}) as q:
            q.put("x")
            q.done(q.get())
        """
    )
    for _ in range(3):
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert rows(backend, "pq_workers") == 0
