"""Fixtures for the dashboard's tests: a seeded store at a fixed time, and apps over it."""

from __future__ import annotations

import asyncio
import inspect as inspection
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import pq_core
from pq_tui.app import PqApp
from pq_tui.screenshots import ACTOR, KINDS, T0, seeded_store


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Pilot drives the app from a coroutine) on a fresh event loop."""
    if not inspection.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(scope="session")
def seeded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds, made once per session (seeding starts a manager process): each test gets a
    copy of its own."""
    folder = tmp_path_factory.mktemp("seeds")
    for kind in KINDS:
        seeded_store(folder, kind)
    return folder


def copy_of(seeded_folder: Path, kind: str, tmp_path: Path) -> str:
    """A copy of a seeded store for one test: the file and its write-ahead log, which hold
    every committed change (nothing writes to the seed while it is copied)."""
    source = Path(seeded_store(seeded_folder, kind))
    target = tmp_path / source.name
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy2(f"{source}{suffix}", f"{target}{suffix}")
    return str(target)


@pytest.fixture
def seeded(seeded_folder: Path, tmp_path: Path) -> Callable[[str], str]:
    """A copy of the seeded store of this kind (one of screenshots.KINDS) for this test."""
    return lambda kind: copy_of(seeded_folder, kind, tmp_path)


@pytest.fixture
def store(seeded_folder: Path, tmp_path: Path) -> str:
    """A freshly seeded store for tests: the operations data of the screenshots plus, as its
    newest job, the hostile job (dead, payload and error full of escape sequences), at T0."""
    return copy_of(seeded_folder, "hostile", tmp_path)


@pytest.fixture
def empty_store(seeded_folder: Path, tmp_path: Path) -> str:
    return copy_of(seeded_folder, "empty", tmp_path)


@pytest.fixture
def inspect() -> Callable[[str], pq_core.Queue]:
    """Open a store the way a test looks at it afterwards: the same fixed clock, every queue."""
    opened: list[pq_core.Queue] = []

    def open_(path: str) -> pq_core.Queue:
        q = pq_core.open(path, clock=lambda: T0)
        opened.append(q)
        return q

    yield open_
    for q in opened:
        q.close()


@pytest.fixture
def make_app() -> Callable[..., PqApp]:
    """Build the App over a store as `pq-tui` would, with the fixed clock."""

    def make(path: str, *, read_only: bool = False, scope: str | None = None, **kw) -> PqApp:
        # No periodic refresh unless a test asks: a test refreshes when it changed the store,
        # and an idle app is what Pilot waits for after every key.
        kw.setdefault("refresh_every", 0)
        q = pq_core.open(path, queue=scope or "default", read_only=read_only, clock=lambda: T0)
        return PqApp(
            q,
            lambda: T0,
            scope=scope,
            source="jobs.sqlite",
            read_only=read_only,
            actor=ACTOR,
            **kw,
        )

    return make
