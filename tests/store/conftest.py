"""The store-level suite: every `Store` method called directly, on every backend.

As River's driver tests do for its drivers, these tests hold each backend to one contract
(`pq_core/store/base.py`) without `pq_core.Queue` in between, so a difference between the
backends cannot hide behind the queue. `backend` is one store's home on each backend with a
clock the test moves (the host's clock for SQLite, the server's `pq_now()` for PostgreSQL);
`store` is a store opened there.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from core.conftest import START, FakeClock
from stores import application_name, postgres_store, postgres_url, terminate

from pq_core.store.base import JobRow, NewJob, Outcome, Store
from pq_core.store.sqlite import SQLiteStore

__all__ = ["START", "Backend", "claim", "job", "new_token"]


class Backend:
    """Where one test's store lives, its clock, and raw access for what no Store call shows."""

    name = "sqlite"

    def __init__(self, target: str, clock: FakeClock) -> None:
        self.target = target
        self.clock = clock
        self.opened: list[Any] = []

    @property
    def postgres(self) -> bool:
        return self.name == "postgres"

    def open(self, mixin: type | None = None, **options: Any) -> Store:
        """Another store on the same data, with a connection of its own; with `mixin`, of a
        class that adds the mixin's plans to the backend's."""
        options.setdefault("clock", self.clock)
        store = _with(mixin, SQLiteStore)(self.target, **options)
        self.opened.append(store)
        return store

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement outside pq (`?` placeholders), committed at once."""
        conn = sqlite3.connect(self.target, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        for store in self.opened:
            store.close()


class PostgresBackend(Backend):
    """A schema of this test's own on the test server (`stores.postgres_store`), and the
    server's clock stopped for it. The test's connections carry an application_name of its
    own, so it only ever ends its own."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        from core.conftest import ServerClock

        from pq_core.store.postgres import Target

        self.application_name = application_name(url)
        self.schema = Target(url).schema
        self.conninfo = Target(url).conninfo
        self._conn: Any = None
        super().__init__(url, ServerClock(url))

    def open(self, mixin: type | None = None, **options: Any) -> Store:
        from pq_core.store.postgres import PostgresStore

        store = _with(mixin, PostgresStore)(self.target, **options)
        self.opened.append(store)
        return store

    def connect(self) -> Any:
        """A connection outside pq, in the store's schema, counted as this test's."""
        import psycopg

        conn = psycopg.connect(self.conninfo, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
        cur = self._conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []

    def terminate(self) -> int:
        """End every server connection this test opened; how many there were."""
        import psycopg

        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            return terminate(admin, self.application_name)

    def close(self) -> None:
        super().close()
        if self._conn is not None:
            self._conn.close()


def _with(mixin: type | None, base: type) -> type:
    return base if mixin is None else type(mixin.__name__ + base.__name__, (mixin, base), {})


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """One store's home on each backend, with its clock stopped at START."""
    if request.param == "sqlite":
        home = Backend(str(tmp_path / "jobs.sqlite"), FakeClock())
        try:
            yield home
        finally:
            home.close()
        return
    with postgres_store() as url:
        postgres = PostgresBackend(url)
        try:
            yield postgres
        finally:
            postgres.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    """A store of this test's own, on the test's clock (START, until the test moves it)."""
    return backend.open()


@pytest.fixture
def clock(backend: Backend) -> FakeClock:
    return backend.clock


def job(
    payload: str | bytes = "x",
    queue: str = "q",
    *,
    priority: int = 0,
    max_attempts: int = 3,
    delay: float = 0.0,
    dedup_key: str | None = None,
    encoding: str | None = None,
) -> NewJob:
    """A job as the queue hands it to `insert`."""
    kind = encoding or ("bytes" if isinstance(payload, bytes) else "str")
    return NewJob(queue, payload, kind, priority, max_attempts, delay, dedup_key)


def new_token() -> str:
    return uuid.uuid4().hex


def claim(
    store: Store,
    queue: str = "q",
    limit: int = 1,
    *,
    lease: float = 60.0,
    worker: str = "host:1:1:boot:ns",
    token: str | None = None,
    ack: Sequence[tuple[int, str]] = (),
) -> list[JobRow]:
    """Claim up to `limit` jobs (the outcomes of `ack` are checked to be CHANGED)."""
    rows, outcomes = store.claim(queue, limit, lease, worker, token or new_token(), ack)
    assert outcomes == [Outcome.CHANGED] * len(ack)
    return rows


EVERY_MINUTE = 10**6  # stats(): per-minute counts as far back as they go
