"""PostgreSQL as the multi-machine backend (issue 9): the server's clock, connections that heal,
quiet waiting, dedup under races, passwords never printed, a store per schema, counters and
one round trip per call. Against the real server; skipped (with the reason) without one."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from stores import application_name, postgres_store, postgres_url, terminate

import pq_core
from pq_core import Status
from pq_core.store.postgres import PostgresStore, Target

from .conftest import ServerClock

HOUR = 3600.0


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_store() as store_url:
        yield store_url


def kill_backends(url: str) -> int:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        return terminate(conn, application_name(url))


# -- the server's clock ------------------------------------------------------------------------


def test_a_client_whose_clock_is_an_hour_off_cannot_bend_a_lease_delay_or_age(url: str) -> None:
    fast = pq_core.open(url, clock=lambda: time.time() + HOUR, lease=300)
    slow = pq_core.open(url, clock=lambda: time.time() - HOUR)
    right = pq_core.open(url)
    delayed = right.put("later", delay="1h")
    assert fast.get() is None  # a fast clock does not make a delayed job due
    now_id = slow.put("now")
    held = right.get()
    assert held is not None and held.id == now_id  # a slow producer's job is not hidden
    pq_core.Manager(fast).sweep()  # a fast manager does not end a live lease
    assert right.item(now_id).status is Status.IN_PROGRESS
    assert abs(held.lease_expires_at.timestamp() - time.time() - 300) < 60
    right.done(held)
    assert right.count(scheduled=True) == 1 and right.item(delayed).status is Status.READY
    age = right.stats()[right.name].oldest_ready_age
    assert age is not None and age < 60
    for q in (fast, slow, right):
        q.close()


def test_the_server_clock_moves_every_client_at_once(url: str) -> None:
    clock = ServerClock(url)
    a, b = pq_core.open(url), pq_core.open(url)
    job_id = a.put("x")
    item = b.get(lease=60)
    clock.advance(61)
    assert pq_core.Manager(a).sweep().requeued == 1
    assert b.item(job_id).status is Status.READY
    with pytest.raises(pq_core.LeaseLost):
        b.heartbeat(item)
    a.close()
    b.close()


# -- connections that heal ---------------------------------------------------------------------


def test_a_backend_killed_during_puts_fails_only_the_calls_in_flight(
    url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    q = pq_core.open(url)
    stored, lost, stop = [], [], threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            try:
                stored.append(q.put(f"job {n}"))
            except pq_core.ConnectionLost as exc:
                lost.append(str(exc))
            n += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for _ in range(5):
            time.sleep(0.1)
            kill_backends(url)
    finally:
        stop.set()
        producer.join(timeout=60)
    assert lost, "no put met a killed backend"
    assert all(len(message) < 600 and "\n" not in message for message in lost)
    after = [q.put(f"after {i}") for i in range(100)]  # the next calls reconnect
    assert len(after) == 100
    jobs = {i.id for i in q.items(limit=100_000)}
    assert set(stored) | set(after) <= jobs  # every put that returned is stored
    assert len(capfd.readouterr().err) < 2000  # no flood from the driver
    q.close()


def test_consume_carries_on_across_a_killed_backend_and_keeps_its_pending_ack(url: str) -> None:
    q = pq_core.open(url)
    ids = q.put_many(["a", "b", "c"])
    seen = []
    with q.consume(timeout=1) as jobs:
        for item in jobs:
            seen.append(item.id)
            if item.id == ids[0]:
                assert kill_backends(url) >= 1  # the ack of this job is pending now
    assert seen == ids
    for job_id in ids:
        item = q.item(job_id)
        assert (item.status, item.attempts) == (Status.DONE, 1)  # acked once, never rerun
    q.close()


def test_the_manager_run_loop_carries_on_across_a_killed_backend(url: str) -> None:
    q = pq_core.open(url, lease=0.2)
    manager = pq_core.Manager(q, interval=0.05)
    runner = threading.Thread(target=manager.run, daemon=True)
    runner.start()
    try:
        for _ in range(3):
            job_id = q.put("x")
            q.get()
            kill_backends(url)
            deadline = time.monotonic() + 30
            while q.item(job_id).status is not Status.READY:
                assert time.monotonic() < deadline, "the manager stopped sweeping"
                time.sleep(0.05)
            q.done(q.get())
    finally:
        manager.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
    q.close()


# -- waiting ---------------------------------------------------------------------------------


def test_a_waiting_get_sleeps_whatever_other_queues_do_and_wakes_for_its_own(url: str) -> None:
    waiter, other = pq_core.open(url, queue="quiet"), pq_core.open(url, queue="busy")
    other.put("warm up")
    claims = []
    real_claim = waiter.store.claim

    def counted(*args: object, **kwargs: object) -> object:
        claims.append(1)
        return real_claim(*args, **kwargs)

    waiter.store.claim = counted  # type: ignore[method-assign]
    assert waiter.get(timeout=0.3) is None  # starts listening once, then stops
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            other.put_many(["x"] * 50)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        claims.clear()
        started = time.monotonic()
        assert waiter.get(timeout=1.5) is None
        assert time.monotonic() - started >= 1.4
        assert len(claims) < 10, f"{len(claims)} claims while nothing of its own arrived"
        conn = waiter.store._local.conn
        assert not conn._notifies_backlog  # nothing piles up once it stopped waiting
        threading.Timer(0.3, lambda: pq_core.open(url, queue="quiet").put("mine")).start()
        started = time.monotonic()
        item = waiter.get(timeout=10)
        assert item is not None and time.monotonic() - started < 5
    finally:
        stop.set()
        flooder.join(timeout=60)
    waiter.close()
    other.close()


# -- dedup and search --------------------------------------------------------------------------


def test_a_put_with_a_dedup_key_always_returns_an_id_while_its_live_job_keeps_finishing(
    url: str,
) -> None:
    errors, ids = [], []
    stop = threading.Event()

    def produce() -> None:
        q = pq_core.open(url)
        while not stop.is_set():
            try:
                ids.append(q.put("x", dedup_key=f"key-{len(ids) % 3}"))
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(repr(exc))
        q.close()

    def finish() -> None:
        q = pq_core.open(url)
        while not stop.is_set():
            for item in q.get_many(5):
                q.done(item)
        q.close()

    threads = [threading.Thread(target=produce) for _ in range(3)] + [
        threading.Thread(target=finish)
    ]
    for t in threads:
        t.start()
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert ids and all(isinstance(i, int) for i in ids)


def test_search_works_with_any_payload_in_every_queue(url: str) -> None:
    q = pq_core.open(url)
    q.put(b"\xff\xfe not utf-8 \x00")
    q.put("lone NUL \x00 in text")
    wanted = pq_core.open(url, queue="other").put("findme")
    assert [i.id for i in q.items(search="findme", queue=None)] == [wanted]
    assert len(q.items(search="not utf")) == 1 and len(q.items(search="in text")) == 1
    q.close()


# -- passwords ---------------------------------------------------------------------------------

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    "target",
    [
        f"postgresql://postgres:{SECRET}@127.0.0.1:1/test",
        f"postgresql://postgres@127.0.0.1:1/test?password={SECRET}",
        f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/test",
        f"postgresql://postgres:{SECRET}@[::1/test",
        f"postgresql://postgres:{SECRET}@no-such-host.invalid/test?connect_timeout=1",
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test?sslmode=bogus",
        f"postgres://:{SECRET}@/test?host=/nonexistent",
    ],
)
def test_no_password_is_ever_printed(target: str) -> None:
    postgres_url()
    with pytest.raises(pq_core.QueueError) as caught:
        pq_core.open(target)
    message = f"{caught.value} {caught.value!r}"
    assert SECRET not in message and "\n" not in str(caught.value)
    assert "***" in message or "postgres" in message


def test_a_store_with_a_password_in_its_url_never_shows_it(url: str) -> None:
    with_password = url.replace("://postgres@", f"://postgres:{SECRET}@") + f"&password={SECRET}"
    q = pq_core.open(with_password)  # trust auth: any password is let in
    q.put("x")
    shown = f"{q!r} {q.location} {q.store.location}"
    assert SECRET not in shown and "***" in shown
    q.close()


# -- stores per schema, counters, round trips --------------------------------------------------


def test_several_stores_live_in_one_database_a_schema_each(url: str) -> None:
    with postgres_store() as second:
        a, b = pq_core.open(url), pq_core.open(second)
        a.put_many(["a1", "a2"])
        b.put("b1")
        assert (a.count(), b.count()) == (2, 1)
        assert [i.payload for i in b.items()] == ["b1"]
        threading.Timer(0.2, lambda: a.put("wake a only")).start()
        assert b.get(timeout=0.8).payload == "b1"
        assert b.get(timeout=0.8) is None  # a's put does not wake b
        a.close()
        b.close()


def test_a_missing_schema_is_created_or_refused_with_create_false(url: str) -> None:
    fresh = re.sub(r"schema=(\w+)", r"schema=\1_fresh", url)
    try:
        with pytest.raises(pq_core.StoreNotFound, match="no such store"):
            pq_core.open(fresh, create=False)
        q = pq_core.open(fresh)
        assert q.put("x") == 1
        q.close()
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            schema = re.search(r"schema=(\w+)", fresh)[1]  # type: ignore[index]
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Counted(PostgresStore):
    """A store that counts the statements (round trips) it sends."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _connection(self):  # type: ignore[no-untyped-def]
        conn = super()._connection()
        if not getattr(conn, "_counted", False):
            real = conn.execute

            def execute(query, *args, **kwargs):  # type: ignore[no-untyped-def]
                self.sent.append(str(query))
                return real(query, *args, **kwargs)

            conn.execute = execute
            conn._counted = True
        return conn


def test_each_hot_call_is_one_round_trip(url: str) -> None:
    store = Counted(url)
    q = pq_core.Queue(store)
    q.put("warm up")
    q.done(q.get())  # registers this consumer (once per process)
    calls = {
        "put": lambda: q.put("x"),
        "put_many": lambda: q.put_many(["a", "b", "c"]),
        "put with dedup_key": lambda: q.put("y", dedup_key="k"),
        "get": lambda: q.get(),
        "get_many": lambda: q.get_many(2),
        "heartbeat": lambda: q.heartbeat(q.items("in_progress")[0] and q.get()),
    }
    for name, call in list(calls.items())[:-1]:
        store.sent.clear()
        call()
        assert len(store.sent) == 1, f"{name}: {store.sent}"
    item = q.get() or q.items()[0]
    for name, call in {
        "heartbeat": lambda: q.heartbeat(item),
        "done": lambda: q.done(item),
    }.items():
        store.sent.clear()
        call()
        assert len(store.sent) == 1, f"{name}: {store.sent}"
    q.put_many(range(5))
    store.sent.clear()
    n = sum(1 for _ in q.consume(timeout=0))
    assert n >= 5 and len(store.sent) <= n + 2  # the ack fused with the next claim
    q.close()


VALUES = {"back": "31"}  # parameters of the statements explained; any other is a queue name


def test_stats_and_count_read_counters_not_the_jobs(url: str) -> None:
    q = pq_core.open(url, durability="normal")
    for _ in range(10):
        q.put_many(["x"] * 2000)
    q.done_many(q.get_many(5000))
    store = Counted(url)
    reader = pq_core.Queue(store)
    plans = []
    store.sent.clear()
    reader.stats()
    reader.count("done")
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        schema = re.search(r"schema=(\w+)", url)[1]  # type: ignore[index]
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("ANALYZE pq_jobs")
        for sql in store.sent:
            if not sql.lstrip().upper().startswith("SELECT") or "pq_now()" not in sql:
                continue
            bound = re.sub(r"%\((\w+)\)s", lambda m: VALUES.get(m[1], "'default'"), sql)
            plan = conn.execute("EXPLAIN " + bound.replace("%%", "%")).fetchall()
            plans.append("\n".join(r[0] for r in plan))
    assert plans and not any("Seq Scan on pq_jobs" in plan for plan in plans), plans
    assert reader.stats()[reader.name].counts == {
        Status.READY: 15000,
        Status.IN_PROGRESS: 0,
        Status.DONE: 5000,
        Status.DEAD: 0,
    }
    q.close()
    reader.close()


def test_credentials_from_pgpassword_pgpass_and_a_service_file_reach_libpq(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pq parses a URL only for its own `schema=`: libpq still reads PGPASSWORD, a .pgpass
    file and a service file (the server here trusts every login, so each must simply work)."""
    target = Target(url)
    schema, app = target.schema, application_name(url)
    parts = urllib.parse.urlsplit(postgres_url())
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{parts.hostname}:{parts.port or 5432}:*:*:{SECRET}\n")
    pgpass.chmod(0o600)
    services = tmp_path / "services"
    services.write_text(
        f"[pqtest]\nhost={parts.hostname}\nport={parts.port or 5432}\n"
        f"dbname={parts.path.lstrip('/')}\nuser={parts.username}\n"
    )
    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    for where in (url, f"postgresql:///?service=pqtest&schema={schema}&application_name={app}"):
        q = pq_core.open(where)
        job_id = q.put("x")
        assert q.item(job_id).payload == "x" and SECRET not in repr(q)
        q.close()
