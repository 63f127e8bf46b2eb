"""Waiting: `wait` returns soon after another connection makes a job of its queue ready
(PostgreSQL: LISTEN/NOTIFY on the queue's channel; SQLite: polling the file's data_version),
sleeps otherwise, and `quiet` stops listening."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import pq_core.store.sqlite
from pq_core.store.base import Store, Verdict

from .conftest import Backend, claim, job

LONG = 30.0  # a wait that should be cut short; the test fails long before it runs out


class Waiter:
    """`store.wait(queue, timeout)` in a thread of its own. `begun` is set once the wait is
    under way, so whatever the test does next happens during it: on PostgreSQL once it
    listens (a first call does that and returns), on SQLite once it has read the file's
    data_version (its first nap)."""

    def __init__(self, store: Store, queue: str, timeout: float, listens: bool) -> None:
        self.store, self.queue, self.timeout, self.listens = store, queue, timeout, listens
        self.begun = threading.Event()
        self.took: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.store.wait(self.queue, 0)  # PostgreSQL: starts listening
        if self.listens:
            self.begun.set()
        started = time.monotonic()
        self.store.wait(self.queue, self.timeout)
        self.took = time.monotonic() - started

    def start(self) -> Waiter:
        self.thread.start()
        assert self.begun.wait(LONG), "the wait did not begin"
        return self

    def join(self) -> float:
        self.thread.join(LONG + 10)
        assert self.took is not None, "the wait did not return"
        return self.took


@pytest.fixture
def waiting(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Waiter]:
    """Make a Waiter on a store (a connection) of its own."""
    waiters: list[Waiter] = []
    real_sleep = time.sleep

    class Clock:  # SQLite's wait naps with time.sleep once it has read data_version
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            for w in waiters:
                if w.thread is threading.current_thread():
                    w.begun.set()
            real_sleep(seconds)

    monkeypatch.setattr(pq_core.store.sqlite, "time", Clock)

    def make(queue: str = "q", timeout: float = LONG) -> Waiter:
        waiter = Waiter(backend.open(), queue, timeout, listens=backend.postgres)
        waiters.append(waiter)
        return waiter

    return make


def _insert(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    return lambda: store.insert([job("x")])


def _insert_many(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    return lambda: store.insert([job("x"), job("y")])


def _release(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    store.insert([job("x")])
    [row] = claim(store)
    return lambda: store.release(row.id, row.token)  # type: ignore[arg-type]


def _fail(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    store.insert([job("x")])
    [row] = claim(store)
    return lambda: store.fail(row.id, row.token, "ready", 0, "e", "e", "c")  # type: ignore[arg-type]


def _requeue(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    [job_id] = store.insert([job("x")])
    store.set_status(job_id, "dead", "op")
    return lambda: store.requeue([job_id], True, "op", None)


def _run_now(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    [job_id] = store.insert([job("x", delay=3600)])
    return lambda: store.run_now([job_id], "op", None)


def _resume(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    store.insert([job("x")])
    store.set_paused("q", True, "op")
    return lambda: store.set_paused("q", False, "op")


def _take_back(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    store.insert([job("x")])
    claim(store, lease=10)
    clock.advance(10)
    return lambda: store.take_back([], lambda hs: [Verdict(h, "ready", "x") for h in hs], "m")


def _set_ready(store: Store, clock) -> Callable[[], object]:  # type: ignore[no-untyped-def]
    [job_id] = store.insert([job("x")])
    store.set_status(job_id, "dead", "op")
    return lambda: store.set_status(job_id, "ready", "op")


READYING = {
    "insert": _insert,
    "insert_many": _insert_many,
    "release": _release,
    "fail_to_ready": _fail,
    "requeue": _requeue,
    "run_now": _run_now,
    "resume": _resume,
    "take_back": _take_back,
    "set_status_ready": _set_ready,
}


@pytest.mark.parametrize("action", list(READYING))
def test_wait_returns_soon_after_another_connection_makes_a_job_of_its_queue_ready(
    store: Store, clock, waiting: Callable[..., Waiter], action: str
) -> None:
    act = READYING[action](store, clock)
    waiter = waiting("q").start()
    act()
    assert waiter.join() < 5


def test_wait_sleeps_its_timeout_when_nothing_happens(waiting: Callable[..., Waiter]) -> None:
    took = waiting("q", 0.3).start().join()
    assert 0.28 <= took < 5


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_wait_on_postgresql_sleeps_through_other_queues_and_other_changes(
    store: Store, waiting: Callable[..., Waiter]
) -> None:
    """SQLite cannot tell what changed: any commit ends its wait early, as documented."""
    [job_id] = store.insert([job("x")])
    waiter = waiting("q", 0.6).start()
    store.insert([job("elsewhere", "other")])
    claim(store)
    store.extend(job_id, store.row(job_id).token, 60)  # type: ignore[arg-type, union-attr]
    store.register("w", "consumer", "q", "h", 1)
    assert waiter.join() >= 0.55


def test_what_arrived_before_quiet_does_not_wake_a_later_wait(
    backend: Backend, store: Store
) -> None:
    waiter = backend.open()
    waiter.quiet()  # not listening yet: nothing to do
    waiter.wait("q", 0)  # PostgreSQL: listens from here on
    store.insert([job("x")])
    waiter.quiet()
    waiter.wait("q", 0)  # listens again
    started = time.monotonic()
    waiter.wait("q", 0.3)
    assert time.monotonic() - started >= 0.28


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_quiet_stops_listening_on_postgresql(backend: Backend) -> None:
    waiter = backend.open()
    conn = waiter._connection()  # type: ignore[attr-defined]

    def channels() -> list[str]:
        return [r[0] for r in conn.execute("SELECT pg_listening_channels()").fetchall()]

    waiter.wait("q", 0)
    assert len(channels()) == 1
    waiter.wait("other", 0)  # one queue at a time
    assert len(channels()) == 1
    waiter.quiet()
    assert channels() == []
