"""`pq-tui --demo`: its workers make every panel move, and all of them stop when it quits."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

import pq_core

pytestmark = pytest.mark.slow


def demo_children(parent: int) -> dict[int, list[str]]:
    """The demo's worker processes: their command ends with the dashboard's pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:
            continue
        if "pq_tui.demo" in argv and argv[-1] == str(parent):
            found[int(entry.name)] = argv
    return found


def drain(fd: int, seconds: float) -> bytes:
    out, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def wait_for(check, seconds: float, fd: int):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        drain(fd, 0.1)
    raise AssertionError("timed out")


def test_demo_runs_workers_that_move_the_store_and_stops_them_on_quit():
    pid, fd = pty.fork()
    if pid == 0:  # the child: the dashboard in a terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execv(sys.executable, [sys.executable, "-m", "pq_tui", "--demo", "--refresh", "0.5"])
    try:
        children = wait_for(lambda: len(demo_children(pid)) >= 7 and demo_children(pid), 20, fd)
        roles = sorted(argv[3] for argv in children.values())
        assert roles == ["consumer"] * 5 + ["manager", "producer"]
        store = next(iter(children.values()))[4]
        folder = Path(store).parent
        q = pq_core.open(store, read_only=True)
        first = q.stats().counts
        assert first[pq_core.Status.DONE] > 0  # the half hour of history
        wait_for(lambda: q.stats().counts[pq_core.Status.DONE] > first[pq_core.Status.DONE], 15, fd)
        kinds = {w.kind for w in q.workers() if w.alive}
        assert kinds == {"consumer", "manager"}
        # Within a minute: dead jobs of several kinds of error, delayed (scheduled) jobs and a
        # paused queue.
        wait_for(lambda: len(dead_errors(q)) >= 3, 60, fd)
        ready = q.items("ready", 500, queue=None)
        assert any(i.available_at.timestamp() > time.time() for i in ready)
        assert [name for name, qs in q.stats().queues.items() if qs.paused] == ["reports"]
        q.close()
        screen = drain(fd, 1.0)
        assert b"demo store" in screen or b"live" in screen
        os.write(fd, b"q")
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 15, fd)
        for child in children:
            assert not Path(f"/proc/{child}").exists() or _zombie(child)
        assert demo_children(pid) == {}
        pid = 0
        assert not folder.exists()
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_demo_workers_stop_by_themselves_if_the_dashboard_is_killed():
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "pq_tui", "--demo"])
    try:
        children = wait_for(lambda: len(demo_children(pid)) >= 7 and demo_children(pid), 20, fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = 0
        gone = lambda: all(not Path(f"/proc/{c}").exists() or _zombie(c) for c in children)  # noqa: E731
        wait_for(gone, 10, fd)
        folder = Path(next(iter(children.values()))[4]).parent
        if folder.exists():  # nobody was left to delete it
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def dead_errors(q: pq_core.Queue) -> set[str]:
    """The kinds of error (exception names) of the dead jobs in every queue."""
    dead = q.items("dead", limit=500, queue=None)
    return {(i.last_error or "").strip().splitlines()[-1].split(":")[0] for i in dead}


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True
