"""A store of a test's own on the PostgreSQL test server.

PostgreSQL tests use the server named by PQ_TEST_POSTGRES_URL and skip, with the reason, when
it is not set; with PQ_REQUIRE_POSTGRES=1 (as CI sets it where a server runs) a missing server
fails them instead. Each test gets a schema of its own, dropped afterwards, and its connections
carry an application_name of its own, so a test only ever terminates backends it opened.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

NO_POSTGRES = "PQ_TEST_POSTGRES_URL is not set: the PostgreSQL backend needs a real server"


def postgres_url() -> str:
    """The test server's URL; skips (or, with PQ_REQUIRE_POSTGRES=1, fails) without one."""
    url = os.environ.get("PQ_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("PQ_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PQ_REQUIRE_POSTGRES=1 but {NO_POSTGRES}")
        pytest.skip(NO_POSTGRES)
    return url


@contextmanager
def postgres_store(url: str | None = None) -> Iterator[str]:
    """A URL for a store in a fresh schema of its own; the schema is dropped afterwards."""
    import psycopg

    base = url or postgres_url()
    tag = uuid.uuid4().hex[:12]
    schema, app = f"pq_test_{tag}", f"pq_test_{tag}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}schema={schema}&application_name={app}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            terminate(conn, app)
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def terminate(conn: Any, application_name: str, timeout: float = 30.0) -> int:
    """End every backend with this application_name (only ever a test's own) and wait until
    they are gone; how many there were."""
    pids = [
        pid
        for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    ]
    for pid in pids:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + timeout
    while conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
    ).fetchone()[0]:
        assert time.monotonic() < deadline, f"backends {pids} did not end"
        time.sleep(0.01)
    return len(pids)


def application_name(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["application_name"][0]
