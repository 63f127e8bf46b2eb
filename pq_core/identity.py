"""Who this process is, and whether a process that claimed jobs is provably gone.

A worker id is "host:pid:start:boot:pidns": the host name, the pid, the process start time in
clock ticks since boot, the machine's boot id and the pid namespace. A pid only means something
on the same boot of the same host in the same pid namespace, so a worker is judged gone only
when all three match this process's and its pid is no longer that process (gone, a zombie, or
reused by a process with another start time). A worker in another container, another pid
namespace or from before a reboot is never judged: its lease decides.
"""

from __future__ import annotations

import getpass
import os
import socket
from functools import cache

HOST = socket.gethostname()


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace").strip()
    except OSError:
        return ""


BOOT = _read("/proc/sys/kernel/random/boot_id").replace("-", "")[:12]


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _stat_fields(text: str) -> list[str]:
    return text[text.rindex(")") + 2 :].split()


def _own_stat() -> tuple[int, str] | None:
    """(pid as /proc numbers it, start time) of this process, from /proc/self."""
    text = _read("/proc/self/stat")
    if not text:
        return None
    return int(text.split(" ", 1)[0]), _stat_fields(text)[19]


def proc_start(pid: int) -> str | None:
    """The start time of a live process, "0" where the OS does not tell, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _exists(pid)
    fields = _stat_fields(stat)
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
def _identity(pid: int) -> tuple[str, bool]:
    """This process's worker id, and whether /proc here shows this pid namespace (when it does
    not, as in `unshare --pid` without a /proc of its own, no pid here can be judged)."""
    own = _own_stat()
    start = own[1] if own else "0"
    sees_own_pids = own is not None and own[0] == pid
    namespace = _pid_namespace() if sees_own_pids else "?"
    return f"{HOST}:{pid}:{start}:{BOOT}:{namespace}", sees_own_pids


def worker_id() -> str:
    """This process's worker id; recomputed after fork."""
    return _identity(os.getpid())[0]


def parse(worker: str) -> tuple[str, int, str, str, str] | None:
    """(host, pid, start, boot, pidns) of a worker id, None if it is not one."""
    parts = worker.rsplit(":", 4)
    if len(parts) != 5 or not parts[1].isdigit() or not parts[1].isascii():
        return None
    host, pid, start, boot, namespace = parts
    return host, int(pid), start, boot, namespace


def can_judge(worker: str) -> bool:
    """Whether this process can see the process behind `worker`: same host, boot and pid
    namespace, with a /proc that shows that namespace."""
    parsed = parse(worker)
    me = parse(worker_id())
    if parsed is None or me is None or not _identity(os.getpid())[1]:
        return False
    host, _pid, _start, boot, namespace = parsed
    return (host, boot, namespace) == (me[0], me[3], me[4]) and "?" not in (namespace, "")


def is_gone(worker: str) -> bool:
    """True only when `worker` is a process this one can see (`can_judge`) and that process no
    longer exists, or its pid now belongs to another process."""
    if not can_judge(worker):
        return False
    _host, pid, start, _boot, _namespace = parse(worker)  # type: ignore[misc]
    now = proc_start(pid)
    return now is None or (start != "0" and now != "0" and now != start)


def short(worker: str | None) -> str:
    """host:pid, for display."""
    if not worker:
        return ""
    parsed = parse(worker)
    if parsed is None:
        return worker.rsplit(":", 1)[0] if worker.count(":") == 2 else worker
    return f"{parsed[0]}:{parsed[1]}"


@cache
def user() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = str(os.getuid())
    return f"{name}@{HOST}"
