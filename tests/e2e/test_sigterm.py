"""A consumer told to stop (SIGTERM → stop()) finishes the job in hand and leaves none held."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

import pq_core
from pq_core import Status

from .conftest import spawn
from .roles import read_ids


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["consume", "claim"])
def test_a_consumer_stopped_by_sigterm_acks_its_last_job_and_holds_none(
    tmp_path: Path, mode: str
) -> None:
    db = str(tmp_path / "jobs.sqlite")
    q = pq_core.open(db)
    q.put_many(range(2000))
    done_log, work_log = tmp_path / "done", tmp_path / "work"
    proc = spawn(
        "consumer",
        db,
        stderr=tmp_path / "err",
        log=done_log,
        work=work_log,
        mode=mode,
        work_seconds=0.005,
    )
    try:
        deadline = time.monotonic() + 60
        while not (done_log.exists() and len(read_ids(done_log)) >= 20):
            assert time.monotonic() < deadline and proc.poll() is None, "the consumer stalled"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "err").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    done = read_ids(done_log)
    stored_done = {i.id for i in q.items(status="done", limit=10_000)}
    assert q.stats()[q.name].counts[Status.IN_PROGRESS] == 0
    assert set(done) == stored_done
    assert read_ids(work_log) == done  # every job started was finished and acked
    assert q.stats()[q.name].counts[Status.READY] == 2000 - len(done)
    q.close()
