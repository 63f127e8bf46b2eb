"""Who this process is, and whether a process that claimed jobs is still the same one.

A worker id is "host:pid:start", where start is the process start time in clock ticks since
boot (Linux /proc). A pid reused by a new process has another start time, so it is not
mistaken for the consumer that crashed.
"""

from __future__ import annotations

import getpass
import os
import socket
from functools import cache

HOST = socket.gethostname()


def proc_start(pid: int) -> str | None:
    """The start time of a live process, "0" where the OS does not tell, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _exists(pid)
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has finished; only its exit status is left
        return None
    return fields[19]


def _exists(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "0"


@cache
def _worker_id(pid: int) -> str:
    return f"{HOST}:{pid}:{proc_start(pid) or '0'}"


def worker_id() -> str:
    """This process's worker id; recomputed after fork."""
    return _worker_id(os.getpid())


def is_gone(worker: str) -> bool:
    """True only when `worker` ran on this host and that process no longer exists."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != HOST or not parts[1].isdigit():
        return False
    start = proc_start(int(parts[1]))
    return start is None or (parts[2] != "0" and start != "0" and start != parts[2])


def short(worker: str | None) -> str:
    """host:pid, for display."""
    if not worker:
        return ""
    return worker.rsplit(":", 1)[0]


@cache
def user() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = str(os.getuid())
    return f"{name}@{HOST}"
