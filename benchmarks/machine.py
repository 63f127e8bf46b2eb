"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import time
from importlib import metadata
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _disk(folder: str) -> str:
    """The device and filesystem holding `folder`, and whether the kernel calls it rotational."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return "unknown"
    real = os.path.realpath(folder)
    best = max(
        (m for m in mounts if real == m[1] or real.startswith(m[1].rstrip("/") + "/")),
        key=lambda m: len(m[1]),
        default=None,
    )
    if best is None:
        return "unknown"
    device, mount, fs = best[0], best[1], best[2]
    kind = ""
    name = os.path.basename(device)
    for candidate in (name, name.rstrip("0123456789")):
        try:
            with open(f"/sys/block/{candidate}/queue/rotational") as f:
                kind = ", rotational" if f.read().strip() == "1" else ", non-rotational"
            break
        except OSError:
            continue
    if name.startswith("vd"):
        kind = ", virtio block device"  # the guest's kernel says rotational for any virtio disk
    return f"{device} ({fs} on {mount}{kind})"


VERSIONS = (
    "pq-jobs",
    "persist-queue",
    "litequeue",
    "huey",
    "pgqueuer",
    "procrastinate",
    "asyncpg",
    "psycopg",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(store_folder: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "disk": _disk(store_folder),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "versions": {d: _version(d) for d in VERSIONS},
    }


def cpu_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def busy_cores(window: float = 0.5) -> float:
    """How many cores something was using over the next `window` seconds (we sleep meanwhile)."""
    busy0, _ = cpu_times()
    time.sleep(window)
    busy1, _ = cpu_times()
    return (busy1 - busy0) / window


def postgres_cpu() -> float:
    """CPU seconds used so far by the server: every process called `postgres` (backends, ours
    and anyone else's) and, through the postmaster's count of its reaped children, the
    backends that have ended."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name.startswith("postgres"):
            fields = text[text.rfind(")") + 2 :].split()
            total += sum(float(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total
