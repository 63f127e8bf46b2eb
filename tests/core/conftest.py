"""Fixtures for the queue-semantics tests: a fake clock and a `queue` on every backend.

Queue semantics are written once and run against each Store, so a second backend cannot drift.
Adding a backend is one entry in TARGETS: a function that gives one test a store of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from stores import postgres_store

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


class ServerClock(FakeClock):
    """The same, for a PostgreSQL store, whose time is the server's: it stops the server's
    clock for this test's store (a row in pq_clock) and moves it when the test says so."""

    def __init__(self, url: str, start: float = START) -> None:
        from pq_core.store.postgres import Target

        self.target = Target(url)
        pq_core.open(url).close()  # the store's tables, pq_clock among them
        super().__init__(start)

    @property  # type: ignore[override]
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        import psycopg

        self._now = value
        conn = getattr(self, "_conn", None)
        if conn is None or conn.closed:
            conn = self._conn = psycopg.connect(self.target.conninfo, autocommit=True)
            conn.execute(f'SET search_path TO "{self.target.schema}"')
        conn.execute(
            "WITH gone AS (DELETE FROM pq_clock) INSERT INTO pq_clock (frozen_at) VALUES (%s)",
            (value,),
        )


@contextmanager
def _sqlite_target(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "jobs.sqlite")


@contextmanager
def _postgres_target(tmp_path: Path) -> Iterator[str]:
    with postgres_store() as url:
        yield url


# backend name → a store of its own for one test
TARGETS: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": _sqlite_target,
    "postgres": _postgres_target,
}


@pytest.fixture(params=list(TARGETS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with TARGETS[request.param](tmp_path) as target:
        yield target


def is_postgres(target: str) -> bool:
    return target.startswith("postgresql://")


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> FakeClock:
    """The store's clock, stopped at START: the host's for SQLite, the server's for
    PostgreSQL (tests without a backend get a plain one)."""
    if "backend" in request.fixturenames:
        target = request.getfixturevalue("backend")
        if is_postgres(target):
            return ServerClock(target)
    return FakeClock()


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
