"""The manager (SPEC 2 and 3): lease expiry, dead-lettering, crash detection, run, events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pq_core
from pq_core import Status, identity

from .conftest import FakeClock, OpenQueue


def test_a_sweep_puts_a_job_whose_lease_ran_out_back_to_ready(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    queue.get(lease=60)
    manager = pq_core.Manager(queue)
    clock.advance(59)
    assert manager.sweep().requeued == 0
    assert queue.item(job_id).status is Status.IN_PROGRESS
    clock.advance(1)
    report = manager.sweep()
    assert (report.requeued, report.dead, report.changed) == (1, 0, True)
    item = queue.item(job_id)
    assert item.status is Status.READY
    assert item.attempts == 1  # the attempt it used still counts
    assert "lease expired" in item.last_error
    assert queue.get().id == job_id  # claimable at once


def test_a_sweep_moves_a_job_out_of_attempts_to_dead(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=2)
    manager = pq_core.Manager(queue)
    for expected in (Status.READY, Status.DEAD):
        assert queue.get(lease=10) is not None
        clock.advance(11)
        manager.sweep()
        assert queue.item(job_id).status is expected
    assert manager.sweep() == pq_core.SweepReport(checkpointed=False)
    assert queue.item(job_id).attempts == 2


def test_the_manager_max_attempts_caps_each_jobs_own(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x", max_attempts=10)
    queue.get(lease=10)
    clock.advance(11)
    assert pq_core.Manager(queue, max_attempts=1).sweep().dead == 1
    assert queue.item(job_id).status is Status.DEAD


def test_lease_timeout_caps_every_lease_so_the_lease_a_consumer_is_told_is_enforced(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    manager = pq_core.Manager(queue, lease_timeout=60)
    manager.sweep()  # a manager sets its ceiling as it starts
    item = queue.get(lease=3600)
    assert (item.lease_expires_at - item.updated_at).total_seconds() == 60  # told the truth
    clock.advance(50)
    item = queue.heartbeat(item, lease=3600)
    assert (item.lease_expires_at - item.updated_at).total_seconds() == 60
    clock.advance(59)
    assert manager.sweep().requeued == 0  # its lease, as told, has not run out
    clock.advance(1)
    assert manager.sweep().requeued == 1
    assert queue.item(job_id).status is Status.READY


def test_a_job_whose_own_lease_is_valid_is_never_taken_back_by_the_manager(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    job_id = queue.put("x")
    item = queue.get(lease=600)
    manager = pq_core.Manager(queue, lease_timeout="5m")
    clock.advance(599)
    assert manager.sweep().requeued == 0  # claimed before the ceiling existed: 10 minutes
    assert queue.item(job_id).status is Status.IN_PROGRESS
    queue.done(item)


def test_an_idle_sweep_changes_nothing_and_records_nothing(queue: pq_core.Queue) -> None:
    queue.put("x")
    queue.get()
    report = pq_core.Manager(queue).sweep()
    assert not report.changed
    assert queue.events(queue=queue.name) == []


def test_a_sweep_that_changed_something_is_recorded_as_an_event(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    ids = queue.put_many(["a", "b"])
    queue.put("c", max_attempts=1)
    queue.get_many(3, lease=10)
    clock.advance(11)
    pq_core.Manager(queue).sweep()
    events = {e.kind: e for e in queue.events(queue=queue.name)}
    assert set(events) == {"requeue", "dead"}
    assert events["requeue"].count == 2 and sorted(events["requeue"].job_ids) == ids
    assert events["dead"].count == 1
    assert events["requeue"].actor.startswith("manager ")
    assert "lease expired" in events["requeue"].detail
    assert any(e.kind == "requeue" for e in queue.item(ids[0]).history)


def test_the_manager_watches_every_named_queue_of_the_store(
    open_queue: OpenQueue, clock: FakeClock
) -> None:
    emails, sms = open_queue("emails"), open_queue("sms")
    e, s = emails.put("e"), sms.put("s")
    emails.get(lease=10)
    sms.get(lease=10)
    clock.advance(11)
    assert pq_core.Manager(emails).sweep().requeued == 2
    assert emails.item(e).status is Status.READY and sms.item(s).status is Status.READY


def test_two_managers_sweeping_at_once_take_each_job_back_once(
    queue: pq_core.Queue, clock: FakeClock
) -> None:
    queue.put_many(range(200))
    queue.get_many(200, lease=10)
    clock.advance(11)
    managers = [pq_core.Manager(queue) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports: list[pq_core.SweepReport] = []

    def sweep(m: pq_core.Manager) -> None:
        barrier.wait()
        reports.append(m.sweep())

    threads = [threading.Thread(target=sweep, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.requeued for r in reports) == 200
    assert sum(e.count for e in queue.events(queue=queue.name)) == 200
    assert queue.stats()[queue.name].counts[Status.READY] == 200


# -- crash detection -----------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_is_gone_is_false_for_this_process() -> None:
    assert identity.is_gone(identity.worker_id()) is False


def like_mine(pid: int | None = None, start: str | None = None, **other: str) -> str:
    """A worker id of this host, boot and pid namespace, with another pid or start time."""
    host, my_pid, my_start, boot, namespace = identity.worker_id().rsplit(":", 4)
    parts = {"host": host, "boot": boot, "namespace": namespace, **other}
    return (
        f"{parts['host']}:{pid or my_pid}:{start or my_start}:{parts['boot']}:{parts['namespace']}"
    )


def test_is_gone_is_true_for_a_process_that_exited() -> None:
    assert identity.is_gone(like_mine(pid=_dead_pid())) is True


def test_a_reused_pid_with_another_start_time_is_not_mistaken_for_the_old_consumer() -> None:
    _host, pid, start, _boot, _ns = identity.worker_id().rsplit(":", 4)
    assert pid == str(os.getpid())
    forged = like_mine(start=str(int(start) + 1))  # this pid, but started at another time
    assert identity.is_gone(forged) is True


def test_is_gone_never_judges_a_worker_of_another_host_or_a_malformed_id() -> None:
    pid = _dead_pid()
    assert identity.is_gone(like_mine(pid=pid, host="another-host.example")) is False
    assert identity.is_gone("no colons") is False
    assert identity.is_gone(f"{identity.HOST}:notapid:1") is False
    assert identity.is_gone(f"{identity.HOST}:{pid}:12345") is False  # no boot or namespace


def test_is_gone_never_judges_a_worker_of_another_boot_or_pid_namespace() -> None:
    pid = _dead_pid()
    assert identity.is_gone(like_mine(pid=pid)) is True
    assert identity.is_gone(like_mine(pid=pid, boot="0123456789ab")) is False
    assert identity.is_gone(like_mine(pid=pid, namespace="4026531999")) is False


def test_a_sweep_takes_back_at_once_the_jobs_of_a_consumer_whose_process_is_gone(
    queue: pq_core.Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = queue.put("x")
    gone = like_mine(pid=_dead_pid())
    monkeypatch.setattr(identity, "worker_id", lambda: gone)
    queue.get(lease=3600)
    monkeypatch.undo()
    assert queue.item(job_id).worker == gone
    report = pq_core.Manager(queue).sweep()
    assert (report.requeued, report.crashed_workers) == (1, 1)
    item = queue.item(job_id)
    assert item.status is Status.READY and "is gone" in item.last_error


def test_a_sweep_takes_back_the_jobs_of_a_consumer_whose_pid_was_reused(
    queue: pq_core.Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = queue.put("x")
    _host, _pid, start, _boot, _ns = identity.worker_id().rsplit(":", 4)
    forged = like_mine(start=str(int(start) + 1))
    monkeypatch.setattr(identity, "worker_id", lambda: forged)
    queue.get(lease=3600)
    monkeypatch.undo()
    assert pq_core.Manager(queue).sweep().requeued == 1
    assert queue.item(job_id).status is Status.READY


def test_a_sweep_leaves_the_jobs_of_a_live_consumer_alone(queue: pq_core.Queue) -> None:
    job_id = queue.put("x")
    queue.get(lease=3600)
    assert pq_core.Manager(queue).sweep().requeued == 0
    assert queue.item(job_id).status is Status.IN_PROGRESS


# -- run -----------------------------------------------------------------------------------------


def test_run_sweeps_until_told_how_many_times(queue: pq_core.Queue, clock: FakeClock) -> None:
    queue.put("x")
    queue.get(lease=1)
    clock.advance(2)
    pq_core.Manager(queue, interval=0.01).run(sweeps=2)
    assert queue.stats()[queue.name].counts[Status.READY] == 1


def test_stop_ends_a_run_in_another_thread(queue: pq_core.Queue) -> None:
    manager = pq_core.Manager(queue, interval=0.05)
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    time.sleep(0.2)
    manager.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_stop_that_comes_before_run_starts_is_not_lost(queue: pq_core.Queue) -> None:
    manager = pq_core.Manager(queue, interval=3600)
    manager.stop()
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_run_exits_cleanly_on_sigterm_and_shows_as_stopped(db: str) -> None:
    pq_core.open(db).close()
    script = textwrap.dedent(
        f"""
        import pq_core
        q = pq_core.open({db!r})
        pq_core.Manager(q, interval=0.1).run()
        print("stopped cleanly", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    q = pq_core.open(db)
    try:
        deadline = time.monotonic() + 30
        while not any(w.kind == "manager" and w.pid == proc.pid for w in q.workers()):
            assert time.monotonic() < deadline, "the manager never registered"
            assert proc.poll() is None
            time.sleep(0.05)
        [manager] = [w for w in q.workers() if w.kind == "manager"]
        assert manager.alive
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopped cleanly" in out
    [manager] = [w for w in q.workers() if w.kind == "manager"]
    assert not manager.alive
    q.close()


def test_the_manager_keeps_the_write_ahead_log_from_growing(db: str) -> None:
    q = pq_core.open(db, durability="normal")
    q.put_many(["x" * 4000] * 5000)  # one 20 MB transaction leaves a log that large behind
    wal = db + "-wal"
    assert os.path.getsize(wal) > 16 * 1024 * 1024
    report = pq_core.Manager(q).sweep()
    assert report.checkpointed
    assert os.path.getsize(wal) < 1024 * 1024
    assert q.stats()[q.name].counts[Status.READY] == 5000
    q.close()
