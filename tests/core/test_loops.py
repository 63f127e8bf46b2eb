"""The claim loops (issue 7 points 1 and 2): a failure inside consume() is a failure, leaving the
loop never leaves a job in progress, and long jobs keep their lease by themselves."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pq_core
from pq_core import Status

from .conftest import FakeClock, OpenQueue

BOTH_APIS = True  # every queue test here runs on Queue and on AsyncQueue


def wait_until(condition, timeout: float = 30.0, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- failures inside consume() ---------------------------------------------------------------


def test_an_exception_in_a_consume_block_fails_the_job_with_its_type_message_and_traceback(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=3)

    def handle(item: pq_core.Item) -> None:
        raise ValueError(f"cannot parse job {item.id}")

    for attempt in (1, 2, 3):
        with pytest.raises(ValueError), queue.consume(timeout=0) as jobs:
            for item in jobs:
                handle(item)
        job = queue.item(job_id)
        assert job.attempts == attempt
        assert job.last_error.splitlines()[-1] == f"ValueError: cannot parse job {job_id}"
        assert "in handle" in job.last_error  # the tail of its traceback
        if attempt < 3:
            assert job.status is Status.READY
            assert job.available_at > job.updated_at  # backing off, as claim() does
            clock.advance(3600)
    assert queue.item(job_id).status is Status.DEAD
    assert [e.kind for e in queue.item(job_id).history] == ["failed", "failed", "dead"]


def test_an_exception_in_a_plain_consume_loop_is_a_failure_too_and_ends_dead(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=2)
    raised = 0
    for _ in range(5):  # a poison job must not come back forever
        try:
            for _item in queue.consume(timeout=0):
                raise ValueError("poison")
        except ValueError:
            raised += 1
        clock.advance(3600)
    assert raised == 2
    job = queue.item(job_id)
    assert (job.status, job.attempts) == (Status.DEAD, 2)
    assert "consume() loop was left" in job.last_error


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_releases_the_job_without_costing_an_attempt(
    queue: pq_core.Queue, stop: type[BaseException]
) -> None:
    first, second = queue.put_many(["a", "b"], max_attempts=1)
    with pytest.raises(stop), queue.claim() as item:
        assert item.id == first
        raise stop()
    with pytest.raises(stop), queue.consume(timeout=0) as jobs:
        for item in jobs:
            assert item.id == first
            raise stop()
    for job_id in (first, second):
        job = queue.item(job_id)
        assert (job.status, job.attempts, job.last_error) == (Status.READY, 0, None)


@pytest.mark.parametrize("leave", ["break", "return", "exception", "close", "stop"])
def test_leaving_a_consume_block_never_leaves_a_job_in_progress(
    queue: pq_core.Queue, leave: str
) -> None:
    ids = queue.put_many(["a", "b", "c"])

    def run() -> None:
        with queue.consume(timeout=0) as jobs:
            for item in jobs:
                if item.id == ids[1]:
                    if leave == "break":
                        break
                    if leave == "return":
                        return
                    if leave == "exception":
                        raise RuntimeError("boom")
                    if leave == "close":
                        queue.close()
                        return
                    queue.stop()

    kept = queue.consume()  # a generator kept in a variable must not hold a job either
    if leave == "exception":
        with pytest.raises(RuntimeError):
            run()
    else:
        run()
    statuses = [queue.item(i).status for i in ids]
    assert Status.IN_PROGRESS not in statuses
    assert statuses[0] is Status.DONE  # the job before was acked
    if leave == "stop":
        assert statuses[1] is Status.DONE  # finished, acked, then the loop stopped
    else:
        assert statuses[1] is Status.READY
    del kept


def test_a_consume_loop_kept_in_a_variable_holds_no_job_after_the_loop_is_left(
    queue: pq_core.Queue,
) -> None:
    ids = queue.put_many(["a", "b"])
    gc.disable()  # collected or not, it must not matter
    try:
        jobs = queue.consume(timeout=0)
        for _item in jobs:
            break
        assert queue.item(ids[0]).status is Status.READY  # failed: it cannot tell why
        with queue.consume(timeout=0) as jobs:
            item = next(iter(jobs))
            assert item.id == ids[1]  # the first is backing off
            assert queue.item(ids[1]).status is Status.IN_PROGRESS  # still in the block
        assert (queue.item(ids[1]).status, queue.item(ids[1]).attempts) == (Status.READY, 0)
    finally:
        gc.enable()


def test_close_puts_back_the_job_a_suspended_consume_holds(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    jobs = iter(queue.consume(timeout=0))
    assert next(jobs).id == job_id
    queue.close()
    item = queue.item(job_id)
    assert (item.status, item.attempts) == (Status.READY, 0)


def test_sigterm_finishes_the_job_in_hand_acks_it_and_stops(db: str) -> None:
    q = pq_core.open(db)
    ids = q.put_many(["a", "b", "c"])
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time, pq_core
        q = pq_core.open({db!r})
        with q.consume(stop_signals=(signal.SIGTERM,)) as jobs:
            for item in jobs:
                print(item.id, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # as if the service manager stopped it
                time.sleep(0.2)  # the job in hand finishes all the same
        print("stopped", flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == [str(ids[0]), "stopped"]
    assert [q.item(i).status for i in ids] == [Status.DONE, Status.READY, Status.READY]
    q.close()


# -- leases kept by themselves ---------------------------------------------------------------


def test_claim_and_consume_keep_a_long_jobs_lease_alive_so_no_sweep_takes_it_back(
    open_queue: OpenQueue,
) -> None:
    q = open_queue(clock=time.time, lease=0.6)
    manager = pq_core.Manager(q)
    ids = q.put_many(["claim", "consume"])
    stop = threading.Event()
    taken = []

    def sweep() -> None:
        while not stop.is_set():
            taken.append(manager.sweep().requeued)
            stop.wait(0.05)

    sweeper = threading.Thread(target=sweep, daemon=True)
    sweeper.start()
    try:
        with q.claim() as item:
            assert item.id == ids[0]
            time.sleep(2.0)  # three leases long
        with q.consume(timeout=0) as jobs:
            for _item in jobs:
                time.sleep(2.0)
    finally:
        stop.set()
        sweeper.join()
    assert sum(taken) == 0
    assert [q.item(i).attempts for i in ids] == [1, 1]
    assert [q.item(i).status for i in ids] == [Status.DONE, Status.DONE]


def test_background_heartbeats_stop_when_the_body_ends_and_can_be_turned_off(
    open_queue: OpenQueue,
) -> None:
    q = open_queue(clock=time.time, lease=0.3)
    job_id = q.put("x")
    with q.claim(heartbeat=False) as item:
        time.sleep(0.5)
        q.release(item)  # its lease ran out: nothing kept it
        assert item.lease_expires_at.timestamp() < time.time()
    assert q.item(job_id).status is Status.READY
    off = open_queue(clock=time.time, lease=0.3, heartbeat=False)
    with off.claim() as item:
        first = off.item(item.id).lease_expires_at
        time.sleep(0.5)
        assert off.item(item.id).lease_expires_at == first
        off.release(item)


def test_get_stays_manual(open_queue: OpenQueue) -> None:
    q = open_queue(clock=time.time, lease=0.2)
    job_id = q.put("x")
    item = q.get()
    time.sleep(0.4)
    assert q.item(job_id).lease_expires_at == item.lease_expires_at


def test_a_job_taken_back_while_its_body_runs_makes_the_body_end_in_lease_lost(
    queue: pq_core.Queue,
) -> None:
    job_id = queue.put("x")
    with pytest.raises(pq_core.LeaseLost), queue.claim() as item:
        queue.requeue([job_id], actor="operator")
        queue.get()  # claimed again elsewhere
        assert item.id == job_id
    assert queue.item(job_id).status is Status.IN_PROGRESS


def test_a_sigterm_in_a_child_process_with_a_plain_loop(db: str) -> None:
    """The classic stop: a handler that calls stop(); the job in hand is acked."""
    q = pq_core.open(db)
    ids = q.put_many(["a", "b"])
    script = textwrap.dedent(
        f"""
        import os, signal, pq_core
        q = pq_core.open({db!r})
        signal.signal(signal.SIGTERM, lambda *_: q.stop())
        for item in q.consume():
            os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    subprocess.run([sys.executable, "-c", script], timeout=60, check=True)
    assert [q.item(i).status for i in ids] == [Status.DONE, Status.READY]
    q.close()


def test_stop_signals_are_restored_when_the_loop_ends(queue: pq_core.Queue, api: str) -> None:
    if api == "async":
        pytest.skip("an event loop's signal handlers live in its main thread: see test_async")
    before = signal.getsignal(signal.SIGTERM)
    with queue.consume(timeout=0, stop_signals=(signal.SIGTERM,)) as jobs:
        assert signal.getsignal(signal.SIGTERM) is not before
        list(jobs)
    assert signal.getsignal(signal.SIGTERM) is before
    assert os.getpid() > 0
