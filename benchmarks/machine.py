"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
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
        "versions": {d: _version(d) for d in ("pq", "persist-queue", "litequeue", "huey")},
    }
