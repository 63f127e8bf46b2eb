"""Crash detection judges only processes it can see (issue 7 point 5).

A consumer in another pid namespace on the same host (`docker run --network=host`,
`unshare --pid`) has a pid that means nothing here: by its host name alone it would look gone
(its pid is another process here, or none). The manager must leave its job to the lease, while
a consumer of this namespace killed with SIGKILL still has its job back at the next sweep.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import pq_core
from pq_core import Status, identity

from .conftest import spawn
from .roles import read_ids

SWEEPS = 3  # sweeps that must leave the other namespace's job alone


def unshare(*options: str) -> list[str]:
    """`unshare --pid --fork --kill-child [options]`, or a skip saying why it cannot run here."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    command = ["unshare", "--pid", "--fork", "--kill-child", *options]
    try:
        probe = subprocess.run([*command, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{' '.join(command)} cannot run here: {exc}")
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip() or f"exit status {probe.returncode}"
        pytest.skip(f"{' '.join(command)} is not permitted here: {why}")
    return command


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def hold(db: str, folder: Path, name: str, prefix: Sequence[str] = ()) -> subprocess.Popen:
    """A consumer that claims the one ready job under a one-hour lease and sits on it."""
    record = folder / f"{name}.held"
    holder = spawn("holder", db, stderr=folder / f"{name}.err", prefix=prefix, log=record)
    wait_for(lambda: holder.poll() is not None or (record.exists() and read_ids(record)),
             f"{name} to claim its job")  # fmt: skip
    assert holder.poll() is None, (folder / f"{name}.err").read_text()
    return holder


@pytest.mark.slow
@pytest.mark.parametrize("proc", ["host /proc", "own /proc"])
def test_a_live_consumer_in_another_pid_namespace_keeps_its_job_and_a_killed_one_here_does_not(
    tmp_path: Path, target: str, proc: str
) -> None:
    command = unshare() if proc == "host /proc" else unshare("--mount-proc")
    q = pq_core.open(target)
    manager = pq_core.Manager(q)
    far_job = q.put("held from another pid namespace")
    far = hold(target, tmp_path, "far", command)
    near_job = q.put("held from this namespace")
    near = hold(target, tmp_path, "near")
    try:
        far_worker = q.item(far_job).worker
        host, pid, start, _boot, _ns = identity.parse(far_worker)  # type: ignore[misc]
        assert host == identity.HOST  # the same host name …
        assert identity.proc_start(pid) != start  # … and a pid that is not that process here

        for _ in range(SWEEPS):
            assert manager.sweep().requeued == 0
        assert q.item(far_job).status is Status.IN_PROGRESS
        assert q.item(near_job).status is Status.IN_PROGRESS

        near.kill()  # SIGKILL
        near.wait(timeout=30)
        report = manager.sweep()
        assert (report.requeued, report.crashed_workers) == (1, 1)
        back = q.item(near_job)
        assert back.status is Status.READY and "is gone" in (back.last_error or "")
        far_now = q.item(far_job)
        assert far_now.status is Status.IN_PROGRESS and far_now.worker == far_worker
        assert far.poll() is None, "the consumer in the other namespace died meanwhile"
    finally:
        for process in (far, near):
            if process.poll() is None:
                process.kill()  # unshare --kill-child takes its namespace's processes along
            process.wait(timeout=30)
    q.close()
