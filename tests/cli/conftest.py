"""Running `pq` as a user does: real processes, reading what they print and record.

Multi-process tests wait on conditions with generous deadlines, never on sleeps: a busy
2-core machine makes everything slower, not different.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

PQ = [sys.executable, "-m", "pq_core.cli"]
DEADLINE = 30.0  # seconds any awaited condition gets before a test gives up


def pq(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `pq ARGS` to completion; with check, a non-zero exit fails the test."""
    result = subprocess.run(
        [*PQ, *args], input=stdin, capture_output=True, text=True, timeout=60
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"pq {' '.join(args)} failed: {result.stderr}")
    return result


def start_pq(*args: str, err: Path, out: Path | None = None, **popen: object) -> subprocess.Popen:
    """Start `pq ARGS` in the background, its stderr (and stdout) going to files."""
    with open(err, "ab") as stderr, open(out or os.devnull, "ab") as stdout:
        return subprocess.Popen(
            [*PQ, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, **popen
        )


def wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> object:
    """Poll `condition` until it is true (returned), or fail the test naming `what`."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(0.01)


def running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie has finished: it only awaits its reaper)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.sqlite")
