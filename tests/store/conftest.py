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
from stores import postgres_url, terminate

import pq_core
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
    """A schema on the test server that every PostgreSQL test of the session reuses, wiped
    before each: making a store's tables anew costs more than the test itself. Each test's
    connections carry an application_name of its own, so it only ever ends its own."""

    name = "postgres"

    def __init__(self, home: PostgresHome) -> None:
        self.home = home
        self.application_name = f"pq_test_{uuid.uuid4().hex[:12]}"
        super().__init__(f"{home.url}&application_name={self.application_name}", SchemaClock(home))

    def open(self, mixin: type | None = None, **options: Any) -> Store:
        from pq_core.store.postgres import PostgresStore

        store = _with(mixin, PostgresStore)(self.target, **options)
        self.opened.append(store)
        return store

    def connect(self) -> Any:
        """A connection outside pq, in the store's schema, counted as this test's."""
        import psycopg

        conn = psycopg.connect(
            self.home.base, application_name=self.application_name, autocommit=True
        )
        conn.execute(f'SET search_path TO "{self.home.schema}"')
        return conn

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        cur = self.home.conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []

    def terminate(self) -> int:
        """End every server connection this test opened; how many there were."""
        return terminate(self.home.conn, self.application_name)

    def close(self) -> None:
        super().close()
        self.terminate()


def _with(mixin: type | None, base: type) -> type:
    return base if mixin is None else type(mixin.__name__ + base.__name__, (mixin, base), {})


class PostgresHome:
    """The session's schema, its tables made once, and a connection to reset and read them."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.schema = f"pq_test_{uuid.uuid4().hex[:12]}"
        self.base = base
        self.conn = psycopg.connect(base, autocommit=True)
        self.conn.execute(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in base else "?"
        self.url = f"{base}{sep}schema={self.schema}"
        pq_core.open(self.url).close()  # the tables
        self.conn.execute(f'SET search_path TO "{self.schema}"')
        tables = [
            name
            for (name,) in self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
            ).fetchall()
        ]
        sequences = [
            name
            for (name,) in self.conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (self.schema,)
            ).fetchall()
        ]
        # The jobs first: deleting them moves the counters, which go after them.
        tables.sort(key=lambda t: (t != "pq_jobs", t == "pq_counters"))
        self.wipe = "; ".join(
            [f'DELETE FROM "{t}"' for t in tables if t != "pq_meta"]
            + ["DELETE FROM pq_meta WHERE key <> 'version'"]
            + [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
        )

    def reset(self) -> None:
        self.conn.execute(self.wipe)

    def close(self) -> None:
        self.conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        self.conn.close()


class SchemaClock(FakeClock):
    """The server's clock (`pq_now()`) of the session's schema, stopped at START and moved
    when the test says so (a row in pq_clock)."""

    def __init__(self, home: PostgresHome, start: float = START) -> None:
        self.home = home
        super().__init__(start)

    @property  # type: ignore[override]
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = value
        self.home.conn.execute(
            "DELETE FROM pq_clock; INSERT INTO pq_clock (frozen_at) VALUES (%s)"
            .replace("%s", repr(float(value)))
        )  # fmt: skip


@pytest.fixture(scope="session")
def postgres_home() -> Iterator[PostgresHome]:
    home = PostgresHome(postgres_url())
    try:
        yield home
    finally:
        home.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """One store's home on each backend, with its clock stopped at START."""
    if request.param == "sqlite":
        home: Backend = Backend(str(tmp_path / "jobs.sqlite"), FakeClock())
    else:
        postgres: PostgresHome = request.getfixturevalue("postgres_home")
        postgres.reset()
        home = PostgresBackend(postgres)
    try:
        yield home
    finally:
        home.close()


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
