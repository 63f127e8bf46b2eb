"""Eight consumer processes drain 8,000 jobs: each job done exactly once, none lost."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

import pq_core
from pq_core import Status

from .conftest import spawn
from .roles import read_ids

JOBS = 8_000
CONSUMERS = 8


@pytest.mark.slow
def test_eight_consumer_processes_drain_eight_thousand_jobs_each_done_exactly_once(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "jobs.sqlite")
    q = pq_core.open(db, durability="normal")
    ids = q.put_many({"n": n} for n in range(JOBS))
    started = time.monotonic()
    consumers = [
        spawn(
            "consumer",
            db,
            stderr=tmp_path / f"consumer-{n}.err",
            log=tmp_path / f"consumer-{n}.done",
            work=tmp_path / f"consumer-{n}.work",
            mode="consume" if n % 2 else "claim",
            durability="normal",
            idle=1.0,
        )
        for n in range(CONSUMERS)
    ]
    try:
        for n, proc in enumerate(consumers):
            code = proc.wait(timeout=150)
            assert code == 0, (tmp_path / f"consumer-{n}.err").read_text()[-2000:]
    finally:
        for proc in consumers:
            if proc.poll() is None:
                proc.kill()
    elapsed = time.monotonic() - started

    done = Counter()
    per_consumer = []
    for n in range(CONSUMERS):
        mine = read_ids(tmp_path / f"consumer-{n}.done")
        per_consumer.append(len(mine))
        done.update(mine)
    twice = {job_id: c for job_id, c in done.items() if c > 1}
    lost = set(ids) - set(done)
    print(f"\n{JOBS} jobs, {CONSUMERS} consumers: {elapsed:.1f} s, per consumer {per_consumer}")
    assert not twice, f"{len(twice)} jobs done more than once, e.g. {sorted(twice)[:10]}"
    assert not lost, f"{len(lost)} jobs never done, e.g. {sorted(lost)[:10]}"
    assert set(done) == set(ids)
    assert q.stats()[q.name].counts == {
        Status.READY: 0,
        Status.IN_PROGRESS: 0,
        Status.DONE: JOBS,
        Status.DEAD: 0,
    }
    assert {i.attempts for i in q.items(limit=1000)} == {1}
    q.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
