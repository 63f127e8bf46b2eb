"""Fixtures for the queue-semantics tests: a fake clock and a `queue` on every backend.

Queue semantics are written once and run against each Store, so a second backend cannot drift.
Adding a backend is one entry in TARGETS: a function that gives one test a store of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

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
    clock for this test's store (its own pq_now()) and moves it when the test says so."""

    def __init__(self, url: str, start: float = START) -> None:
        from pq_core.store.postgres import Target

        self.target = Target(url)
        pq_core.open(url).close()  # the store's tables and its pq_now()
        super().__init__(start)

    @property  # type: ignore[override]
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        import psycopg

        self._now = value
        for _attempt in range(2):  # a test may have ended this connection with its own
            conn = getattr(self, "_conn", None)
            if conn is None or conn.closed or conn.broken:
                conn = self._conn = psycopg.connect(self.target.conninfo, autocommit=True)
                conn.execute(f'SET search_path TO "{self.target.schema}"')
            try:
                conn.execute(stop_the_clock(value))
                return
            except psycopg.OperationalError:
                conn.close()


def stop_the_clock(at: float) -> str:
    """The statement that makes a PostgreSQL store's clock (`pq_now()`, in the store's schema)
    say `at` until the next one."""
    return (
        "CREATE OR REPLACE FUNCTION pq_now() RETURNS DOUBLE PRECISION LANGUAGE sql STABLE"
        f" AS $$ SELECT CAST({float(at)!r} AS DOUBLE PRECISION) $$"
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set BOTH_APIS = True run each queue test through Queue and AsyncQueue."""
    if "api" in metafunc.fixturenames:
        both = getattr(metafunc.module, "BOTH_APIS", False)
        metafunc.parametrize("api", ["sync", "async"] if both else ["sync"], indirect=True)


@pytest.fixture
def api(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_queue(backend: str, clock: FakeClock, api: str) -> Iterator[OpenQueue]:
    """Open a named queue of this test's store, on the fake clock: a Queue, or an AsyncQueue
    behind a synchronous face (the same calls, awaited on an event loop of its own)."""
    opened: list[Any] = []
    runner = AsyncRunner() if api == "async" else None

    def _open(name: str = "default", **options: object) -> pq_core.Queue:
        options.setdefault("clock", clock)
        if runner is None:
            q: Any = pq_core.open(backend, queue=name, **options)
        else:
            q = Awaited(runner, runner.run(pq_core.open_async(backend, queue=name, **options)))
        opened.append(q)
        return q

    yield _open
    for q in opened:
        q.close()
    if runner is not None:
        runner.close()


class AsyncRunner:
    """An event loop on a thread of its own, to await coroutines from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


class Awaited:
    """An AsyncQueue with Queue's synchronous face: each coroutine call is awaited on the
    runner's loop; claim() and consume() become a context manager and an iterator."""

    def __init__(self, runner: AsyncRunner, queue: Any) -> None:
        self._runner, self._queue = runner, queue
        self.store = AwaitedStore(runner, queue.store)  # for a Manager of the test's

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._queue, name)
        if not callable(value) or name in ("stop",):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            return self._runner.run(result) if inspect.isawaitable(result) else result

        return call

    def __repr__(self) -> str:
        return repr(self._queue)

    @contextmanager
    def claim(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        manager = self._queue.claim(*args, **kwargs)
        item = self._runner.run(manager.__aenter__())
        try:
            yield item
        except BaseException as exc:
            if not self._runner.run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self._runner.run(manager.__aexit__(None, None, None))

    def consume(self, *args: Any, **kwargs: Any) -> AwaitedConsumer:
        return AwaitedConsumer(self._runner, self._queue.consume(*args, **kwargs))


class AwaitedStore:
    """An async store's calls, awaited one at a time."""

    def __init__(self, runner: AsyncRunner, store: Any) -> None:
        self._runner, self._store = runner, store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            return self._runner.run(result) if inspect.isawaitable(result) else result

        return call


class AwaitedConsumer:
    def __init__(self, runner: AsyncRunner, consumer: Any) -> None:
        self._runner, self._consumer = runner, consumer

    def __enter__(self) -> AwaitedConsumer:
        self._runner.run(self._consumer.__aenter__())
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._runner.run(self._consumer.__aexit__(exc_type, exc, tb))

    def __iter__(self) -> Iterator[Any]:
        jobs = self._consumer.__aiter__()
        try:
            while True:
                try:
                    item = self._runner.run(jobs.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            self._runner.run(jobs.aclose())


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
