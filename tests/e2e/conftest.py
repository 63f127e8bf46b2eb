"""Helpers for tests that run producers, consumers and managers as real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROLES = Path(__file__).with_name("roles.py")


def spawn(
    role: str,
    db: str,
    stderr: Path | None = None,
    prefix: Sequence[str] = (),
    **options: object,
) -> subprocess.Popen:
    """Start `roles.py ROLE DB --option value …` as a process of its own (under `prefix`, a
    command that runs it, such as `unshare --pid --fork`)."""
    argv = [*prefix, sys.executable, str(ROLES), role, db]
    for name, value in options.items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    err = open(stderr, "ab") if stderr else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    finally:
        if stderr:
            err.close()
