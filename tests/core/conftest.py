"""Fixtures for the queue-semantics tests: a fake clock and a `queue` on every backend.

Queue semantics are written once and run against each Store, so a second backend cannot drift.
Adding a backend is one entry in TARGETS: a function that gives one test a store of its own.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

import pq_core
from pq_core.store.sqlite import SQLiteStore

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class FakeClock:
    """Seconds since the epoch that only move when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


NO_POSTGRES = "PQ_TEST_POSTGRES_URL is not set: the PostgreSQL backend needs a real server"


@contextmanager
def _sqlite_target(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "jobs.sqlite")


@contextmanager
def _postgres_target(tmp_path: Path) -> Iterator[str]:
    url = os.environ.get("PQ_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(NO_POSTGRES)
    import psycopg

    # One server serves every test: each test gets a schema of its own, dropped afterwards.
    schema = f"pq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# backend name → a store of its own for one test
TARGETS: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": _sqlite_target,
    "postgres": _postgres_target,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=list(TARGETS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with TARGETS[request.param](tmp_path) as target:
        yield target


OpenQueue = Callable[..., pq_core.Queue]


@pytest.fixture
def open_queue(backend: str, clock: FakeClock) -> Iterator[OpenQueue]:
    """Open a named queue of this test's store, on the fake clock."""
    opened: list[pq_core.Queue] = []

    def _open(name: str = "default", **options: object) -> pq_core.Queue:
        options.setdefault("clock", clock)
        q = pq_core.open(backend, queue=name, **options)
        opened.append(q)
        return q

    yield _open
    for q in opened:
        q.close()


@pytest.fixture
def queue(open_queue: OpenQueue) -> pq_core.Queue:
    """The default queue of a fresh store on every backend."""
    return open_queue()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A path for a SQLite store (for tests of SQLite itself: files, processes, errors)."""
    return str(tmp_path / "jobs.sqlite")


class TracedStore(SQLiteStore):
    """A SQLite store that notes every statement it runs, to check what a call costs."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.statements: list[str] = []
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.set_trace_callback(self.statements.append)
        return conn
