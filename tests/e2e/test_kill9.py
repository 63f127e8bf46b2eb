"""kill -9 chaos: producers, consumers and a manager are killed at random and restarted.

Each process keeps its own record (append + fsync per line): a producer records an id once its
put returned, a consumer records an id when it starts work on it and again once its done
returned. After the chaos a clean manager and consumer drain the store, and then every job whose
put returned is done, none is lost, and jobs worked on twice are no more than consumer kills.
The store runs at durability="normal", whose promise is exactly this: any process crash.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

import pq_core
from pq_core import Status

from .conftest import spawn
from .roles import read_ids

CHAOS_SECONDS = 10.0
SLOTS = {
    "producer-0": {"pause": 0.002},
    "producer-1": {"pause": 0.002},
    "consumer-0": {"mode": "consume", "lease": 120},
    "consumer-1": {"mode": "consume", "lease": 120},
    "consumer-2": {"mode": "claim", "lease": 120},
    "manager-0": {"interval": 0.2},
}


class Fleet:
    """The running processes, each restarted under a new record after every kill."""

    def __init__(self, folder: Path, db: str) -> None:
        self.folder, self.db = folder, db
        self.procs: dict[str, subprocess.Popen] = {}
        self.lives: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()

    def start(self, slot: str) -> None:
        role = slot.split("-")[0]
        self.lives[slot] += 1
        name = f"{slot}.{self.lives[slot]}"
        records = {}
        if role == "producer":
            records = {"log": self.folder / f"{name}.put"}
        elif role == "consumer":
            records = {"log": self.folder / f"{name}.done", "work": self.folder / f"{name}.work"}
        self.procs[slot] = spawn(
            role,
            self.db,
            stderr=self.folder / f"{name}.err",
            durability="normal",
            **records,
            **SLOTS[slot],
        )

    def check_nobody_died_on_their_own(self) -> None:
        for slot, proc in self.procs.items():
            if proc.poll() is not None:
                err = self.folder / f"{slot}.{self.lives[slot]}.err"
                pytest.fail(f"{slot} exited by itself ({proc.returncode}):\n{err.read_text()}")

    def kill(self, slot: str) -> None:
        proc = self.procs[slot]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        self.kills[slot.split("-")[0]] += 1

    def kill_all(self) -> None:
        for slot, proc in self.procs.items():
            if proc.poll() is None:
                self.kill(slot)

    def ids(self, suffix: str) -> Counter[int]:
        found: Counter[int] = Counter()
        for path in self.folder.glob(f"*.{suffix}"):
            found.update(read_ids(path))
        return found


@pytest.mark.slow
def test_kill_9_at_random_loses_no_job_whose_put_returned(tmp_path: Path, target: str) -> None:
    seed = int(os.environ.get("PQ_CHAOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    db = target
    pq_core.open(db).close()
    fleet = Fleet(tmp_path, db)
    try:
        for slot in SLOTS:
            fleet.start(slot)
        deadline = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.5))
            fleet.check_nobody_died_on_their_own()
            slot = rng.choice(list(SLOTS))
            fleet.kill(slot)
            fleet.start(slot)
        fleet.check_nobody_died_on_their_own()
    finally:
        fleet.kill_all()  # the last ones die by SIGKILL too, wherever they are

    # Drain: a clean manager takes back what killed consumers held; a clean consumer finishes.
    manager = spawn("manager", db, stderr=tmp_path / "final-manager.err", interval=0.2)
    drainer = spawn(
        "consumer",
        db,
        stderr=tmp_path / "final.err",
        log=tmp_path / "final.done",
        work=tmp_path / "final.work",
        idle=2.0,
    )
    try:
        assert drainer.wait(timeout=120) == 0, (tmp_path / "final.err").read_text()
        manager.send_signal(signal.SIGTERM)
        assert manager.wait(timeout=30) == 0, (tmp_path / "final-manager.err").read_text()
    finally:
        for proc in (manager, drainer):
            if proc.poll() is None:
                proc.kill()

    put = fleet.ids("put")
    worked = fleet.ids("work")
    done = fleet.ids("done")
    q = pq_core.open(db)
    stored = {i.id: i.status for i in q.items(queue=None, limit=1_000_000)}
    lost = [job_id for job_id in put if stored.get(job_id) is not Status.DONE]
    duplicates = sum(n - 1 for n in worked.values() if n > 1)
    consumer_kills = fleet.kills["consumer"]
    print(
        f"\nseed {seed}: {len(put)} puts returned ({len(stored)} stored), "
        f"kills {dict(fleet.kills)}, worked twice {duplicates}, lost {len(lost)}"
    )
    assert len(put) == sum(put.values()), "a put returned the same id twice"
    assert not lost, f"{len(lost)} jobs whose put returned are not done, e.g. {lost[:10]}"
    assert set(stored.values()) == {Status.DONE}, Counter(stored.values())
    assert set(put) <= set(worked), "a job was marked done without being worked on"
    assert set(done) <= set(stored), "a consumer recorded a job the store never had"
    assert duplicates <= consumer_kills, (
        f"{duplicates} jobs worked more than once, but only {consumer_kills} consumer kills"
    )
    assert q.stats()[q.name].counts[Status.DONE] == len(stored)
    assert q.check().ok, q.check().problems  # integrity, and counters that match the rows
    q.close()
