"""Fixtures for the dashboard's tests: a seeded store at a fixed time, and apps over it."""

from __future__ import annotations

import asyncio
import inspect as inspection
from collections.abc import Callable
from pathlib import Path

import pytest

import pq_core
from pq_tui.app import PqApp
from pq_tui.screenshots import ACTOR, T0, seeded_store


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Pilot drives the app from a coroutine) on a fresh event loop."""
    if not inspection.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A freshly seeded store (the screenshots' store): two queues, every status, at T0."""
    return seeded_store(tmp_path)


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    return seeded_store(tmp_path, empty=True)


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
