"""The PostgreSQL server the comparison runs on: a database of its own per measurement.

Every system × workload × round gets a fresh database (`pq_bench_<run>_<n>`), created before
the measurement's process starts and dropped after it ended. Every connection the benchmarks
open carries an `application_name` starting with `pq-bench`; before a drop, only backends
with that tag, connected to that database, are ever terminated. Nothing else on the server
(other databases, schemas or sessions) is touched.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_ENV = "PQ_BENCH_POSTGRES_URL"
TAG = "pq-bench"  # application_name prefix of every connection the benchmarks open
SETTINGS = (
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_connections",
)


def server_url(option: str | None) -> str:
    return option or os.environ.get(URL_ENV) or DEFAULT_URL


def with_database(url: str, database: str, app: str | None = None) -> str:
    """`url` pointed at `database`, its connections tagged `application_name=app` (or, with
    no app, without an application_name: the measured systems set their own)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    if app:
        query.append(("application_name", app))
    return urlunsplit(parts._replace(path="/" + database, query=urlencode(query)))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(url: str) -> tuple[str, str | None]:
    """(url with no password, the password): the measurement processes get it through
    PGPASSWORD, which libpq and asyncpg both read, so it never shows in a command line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    netloc = parts.netloc.replace(":" + parts.password + "@", "@", 1)
    return urlunsplit(parts._replace(netloc=netloc)), parts.password


def scrub(text: str, url: str) -> str:
    """`text` without the URL's password, wherever a driver's message echoed it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


class Server:
    """An admin connection to the server, for creating and dropping the run's databases."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin_url = with_database(url, urlsplit(url).path.lstrip("/") or "postgres", TAG)
        self._psycopg = psycopg
        self.conn = psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)
        self.run_id = f"{os.getpid()}_{int(time.time()) % 100_000}"
        self._n = 0

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "version": self.conn.execute("SHOW server_version").fetchone()[0],
            "url": redacted(self.url),
        }
        for name in SETTINGS:
            info[name] = self.conn.execute(f"SHOW {name}").fetchone()[0]
        return info

    def create(self, label: str) -> str:
        """A new empty database for one measurement; returns its name."""
        self._n += 1
        safe = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:30]
        name = f"pq_bench_{self.run_id}_{self._n}_{safe}"
        self.conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> str | None:
        """Drop one of our databases; ends only backends tagged as ours on it. Returns a
        warning when it could not be dropped (something else is connected to it)."""
        if not name.startswith("pq_bench_"):
            raise ValueError(f"refusing to drop {name!r}: not a benchmark database")
        last = None
        for _ in range(20):
            try:
                if self.conn.closed:
                    self.conn = self._psycopg.connect(
                        self.admin_url, autocommit=True, connect_timeout=10
                    )
                self.conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                    (name, TAG + "%"),
                )
                self.conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return None
            except self._psycopg.Error as exc:
                last = scrub(str(exc).strip().splitlines()[0], self.url)
                time.sleep(0.25)
        return f"could not drop database {name}: {last}"

    def leftovers(self) -> list[str]:
        """Databases of this run still present (there should be none)."""
        rows = self.conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"pq_bench_{self.run_id}_%",),
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.conn.close()


def reachable(url: str) -> str | None:
    """None when the server answers and psycopg is installed, else why not (one line)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (uv sync --group bench)"
    try:
        with psycopg.connect(
            with_database(url, urlsplit(url).path.lstrip("/") or "postgres", TAG),
            connect_timeout=5,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        why = scrub(str(exc).strip().splitlines()[0], url)
        return f"no PostgreSQL server at {redacted(url)}: {why}"
    return None
