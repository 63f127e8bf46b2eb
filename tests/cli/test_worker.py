"""`pq worker` as a process supervisor: real worker processes, real commands, real signals.

The commands are a small Python script (CHILD) that records what happens to it (start, the
signals it gets, its environment) in a file, each line appended and fsynced, and waits for
files the test creates. Nothing here sleeps to synchronise: every wait is on a condition.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pq_core
from pq_core import Status

from .conftest import lines, pq, running, start_pq, wait_for

CHILD = r"""
import os, signal, sys, time

log, *steps = sys.argv[1:]

def record(text):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (text + "\n").encode())
    os.fsync(fd)
    os.close(fd)

def on_signal(signum, frame):
    record(f"signal {signal.Signals(signum).name} {os.getpid()}")
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
record(f"start {os.getpid()} {os.environ.get('PQ_JOB_ID')}")
while steps:
    step = steps.pop(0)
    if step == "env":
        names = ("PQ_JOB_ID", "PQ_QUEUE", "PQ_ATTEMPT", "PQ_MAX_ATTEMPTS")
        record("env " + " ".join(f"{n}={os.environ.get(n)}" for n in names))
    elif step == "stdin":
        record("stdin " + sys.stdin.read())
    elif step == "out":
        print(steps.pop(0), flush=True)
    elif step == "err":
        print(steps.pop(0), file=sys.stderr, flush=True)
    elif step == "spew":  # this many KiB of stderr
        for _ in range(int(steps.pop(0))):
            sys.stderr.write("x" * 1023 + "\n")
        sys.stderr.flush()
    elif step == "wait":  # until a file exists (the test says go)
        path, end = steps.pop(0), time.monotonic() + 60
        while not os.path.exists(path):
            if time.monotonic() > end:
                record("gave up waiting")
                sys.exit(9)
            time.sleep(0.01)
    elif step == "starts":  # until this many commands have started (concurrency)
        want, end = int(steps.pop(0)), time.monotonic() + 60
        while sum(l.startswith("start") for l in open(log)) < want:
            if time.monotonic() > end:
                record("gave up waiting")
                sys.exit(9)
            time.sleep(0.01)
    elif step == "sleep":
        time.sleep(1000)
    elif step == "exit":
        sys.exit(int(steps.pop(0)))
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[list[str]]:
    """The command line of CHILD, recording into tmp_path/child.log; add steps after it.
    A command a failing test left behind is killed afterwards, not left to run for ages."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    yield [sys.executable, str(script), str(tmp_path / "child.log")]
    for pid in started_pids(tmp_path):
        if running(pid) and str(script) in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)


def records(tmp_path: Path, kind: str) -> list[list[str]]:
    return [line.split()[1:] for line in lines(tmp_path / "child.log") if line.startswith(kind)]


def started_pids(tmp_path: Path) -> list[int]:
    return [int(fields[0]) for fields in records(tmp_path, "start")]


def test_worker_runs_the_command_per_job_done_on_success_failed_with_stderr_otherwise(
    db: str,
) -> None:
    q = pq_core.open(db, max_attempts=1)
    good, bad = q.put("fine"), q.put("explode")
    script = 'read p; if [ "$p" = explode ]; then echo "it blew up: $p" >&2; exit 3; fi'
    pq("worker", db, "--exit-when-empty", "--", "sh", "-c", script)
    assert q.item(good).status == Status.DONE
    failed = q.item(bad)
    assert failed.status == Status.DEAD and "it blew up: explode" in failed.last_error


def test_the_payload_is_on_stdin_and_the_job_in_the_environment(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db, queue="mail", max_attempts=4)
    job = q.put({"to": "ada"})
    pq("worker", db, "-q", "mail", "--exit-when-empty", "--", *child, "env", "stdin")
    assert records(tmp_path, "env") == [
        [f"PQ_JOB_ID={job}", "PQ_QUEUE=mail", "PQ_ATTEMPT=1", "PQ_MAX_ATTEMPTS=4"]
    ]
    assert json.loads(" ".join(records(tmp_path, "stdin")[0])) == {"to": "ada"}
    assert q.item(job).status == Status.DONE


def test_a_kill_9_of_the_worker_leaves_no_command_running(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db)
    q.put_many(["a", "b"])
    worker = start_pq(
        "worker", db, "--concurrency", "2", "--", *child, "sleep", err=tmp_path / "worker.err"
    )
    pids = wait_for(lambda: len(started_pids(tmp_path)) == 2 and started_pids(tmp_path), "2 jobs")
    assert all(running(pid) for pid in pids)
    worker.kill()
    killed_at = time.monotonic()
    worker.wait(timeout=30)
    wait_for(lambda: not any(running(pid) for pid in pids), "the commands to die with the worker")
    print(f"commands gone {time.monotonic() - killed_at:.3f}s after the worker's kill -9")
    assert q.count(Status.IN_PROGRESS) == 2  # the manager's to take back; nothing runs them now


def test_a_kill_9_of_the_worker_leaves_nothing_the_command_started_running(
    db: str, tmp_path: Path
) -> None:
    q = pq_core.open(db)
    q.put("a")
    shell, grandchild = tmp_path / "shell.pid", tmp_path / "grandchild.pid"
    # The shell forks `sleep` (it has more to do after it): the parent-death signal reaches
    # the shell only; the rest of the group is the guardian's to kill.
    script = f"echo $$ > {shell}; sleep 1000 & echo $! > {grandchild}; wait; echo done"
    worker = start_pq("worker", db, "--", "sh", "-c", script, err=tmp_path / "worker.err")
    try:
        wait_for(lambda: grandchild.exists() and grandchild.read_text().strip(), "the command")
        pids = [int(shell.read_text()), int(grandchild.read_text())]
        assert all(running(pid) for pid in pids)
        worker.kill()
        killed_at = time.monotonic()
        worker.wait(timeout=30)
        wait_for(lambda: not any(running(pid) for pid in pids), "the command's group to die")
        print(f"the command's group gone {time.monotonic() - killed_at:.3f}s after kill -9")
    finally:
        for pid in [int(p.read_text()) for p in (shell, grandchild) if p.exists()]:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_timeout_kills_the_commands_whole_group_and_fails_the_job(db: str, tmp_path: Path) -> None:
    q = pq_core.open(db, max_attempts=1)
    job = q.put("slow")
    grandchild = tmp_path / "grandchild.pid"
    script = f"sleep 1000 & echo $! > {grandchild}; wait"
    started = time.monotonic()
    result = pq("worker", db, "--timeout", "0.5s", "--exit-when-empty", "--", "sh", "-c", script)
    assert time.monotonic() - started < 20
    item = q.item(job)
    assert item.status == Status.DEAD and item.last_error == "timed out after 0.5s"
    assert not running(int(grandchild.read_text()))  # the command's own child went too
    assert "outcome=dead" in result.stderr and 'reason="timed out after 0.5s"' in result.stderr


def test_the_first_signal_lets_the_job_in_hand_finish_and_the_terminal_ctrl_c_skips_the_command(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db)
    first, second = q.put("in hand"), q.put("never started")
    go, err = tmp_path / "go", tmp_path / "worker.err"
    # A session of its own, as a shell's job is: a Ctrl-C goes to its whole process group.
    worker = start_pq("worker", db, "--", *child, "wait", str(go), err=err, start_new_session=True)
    wait_for(lambda: started_pids(tmp_path), "the job to start")
    os.killpg(worker.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    wait_for(lambda: "stopping" in err.read_text(), "the worker to say it is stopping")
    go.touch()
    assert worker.wait(timeout=30) == 0, err.read_text()
    assert records(tmp_path, "signal") == []  # the command never saw the Ctrl-C
    assert q.item(first).status == Status.DONE
    untouched = q.item(second)
    assert untouched.status == Status.READY and untouched.attempts == 0


def test_a_second_signal_stops_the_command_and_puts_its_job_back(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db, max_attempts=1)
    job = q.put("long")
    err = tmp_path / "worker.err"
    worker = start_pq("worker", db, "--grace", "1h", "--", *child, "sleep", err=err)
    [pid] = wait_for(lambda: started_pids(tmp_path), "the job to start")
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in err.read_text(), "the worker to say it is stopping")
    assert running(pid)  # one signal: the job in hand goes on
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 128 + signal.SIGTERM, err.read_text()
    assert records(tmp_path, "signal") == [["SIGTERM", str(pid)]]
    item = q.item(job)
    assert item.status == Status.READY and item.last_error is None  # not failed, not dead
    assert "outcome=released" in err.read_text()


def test_when_the_grace_runs_out_the_job_goes_back_too(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db, max_attempts=1)
    job = q.put("long")
    err = tmp_path / "worker.err"
    worker = start_pq("worker", db, "--grace", "0.3s", "--", *child, "sleep", err=err)
    wait_for(lambda: started_pids(tmp_path), "the job to start")
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == 128 + signal.SIGINT, err.read_text()
    assert [fields[0] for fields in records(tmp_path, "signal")] == ["SIGTERM"]
    assert q.item(job).status == Status.READY


def test_a_job_put_back_on_stop_has_not_used_an_attempt(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db)
    job = q.put("long")
    err = tmp_path / "worker.err"
    worker = start_pq("worker", db, "--grace", "0s", "--", *child, "sleep", err=err)
    wait_for(lambda: started_pids(tmp_path), "the job to start")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    assert q.item(job).attempts == 0


def test_stderr_passes_through_live_and_only_its_tail_becomes_the_error(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db, max_attempts=1)
    job = q.put("noisy")
    go, err, out = tmp_path / "go", tmp_path / "worker.err", tmp_path / "worker.out"
    steps = ["out", "to stdout", "err", "early news", "wait", str(go)]
    steps += ["spew", "256", "err", "THE END", "exit", "3"]
    worker = start_pq("worker", db, "--exit-when-empty", "--", *child, *steps, err=err, out=out)
    wait_for(lambda: "early news" in err.read_text(), "stderr to pass through while it runs")
    assert "to stdout" in out.read_text()
    go.touch()
    assert worker.wait(timeout=30) == 0
    assert err.stat().st_size > 256 * 1024  # all of it reached the worker's stderr
    error = q.item(job).last_error
    assert error.endswith("THE END") and len(error) <= 4200  # a few KiB, not 256


def test_one_log_line_per_job_and_quiet_leaves_them_out(db: str, child: list[str]) -> None:
    q = pq_core.open(db, max_attempts=2)
    good, bad = q.put("ok"), q.put("bad")
    script = '[ "$(cat)" = ok ]'
    logged = pq("worker", db, "--exit-when-empty", "--", "sh", "-c", script).stderr.splitlines()
    assert len(logged) == 2, logged
    assert f"job={good} queue=default attempt=1/2 outcome=done duration=" in logged[0]
    assert f"job={bad} queue=default attempt=1/2 outcome=failed duration=" in logged[1]
    assert logged[1].endswith('reason="exited with status 1"')
    assert logged[0][:20].endswith("Z")  # an ISO time in UTC first
    q.requeue([bad])
    assert pq("worker", db, "--quiet", "--exit-when-empty", "--", "true").stderr == ""


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/nonexistent/cmd", "no such file"),
        ("no-such-command-pq-test", "command not found"),
        ("{tmp}", "is a directory"),
        ("{tmp}/not-executable", "not executable"),
    ],
)
def test_a_command_that_cannot_run_is_an_error_before_any_claim(
    db: str, tmp_path: Path, command: str, expected: str
) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    q = pq_core.open(db)
    job = q.put("precious")
    result = pq("worker", db, "--", command.replace("{tmp}", str(tmp_path)), check=False)
    assert result.returncode == 2 and expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    item = q.item(job)
    assert item.status == Status.READY and item.attempts == 0


def test_a_command_that_fails_to_start_puts_the_claimed_job_back_and_exits_2(
    db: str, tmp_path: Path
) -> None:
    script = tmp_path / "bad-interpreter"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    q = pq_core.open(db, max_attempts=1)
    job = q.put("precious")
    result = pq("worker", db, "--", str(script), check=False)
    assert result.returncode == 2 and "cannot run" in result.stderr
    assert "Traceback" not in result.stderr
    item = q.item(job)
    assert item.status == Status.READY and item.last_error is None


def test_concurrency_runs_that_many_jobs_at_once(db: str, tmp_path: Path, child: list[str]) -> None:
    q = pq_core.open(db, max_attempts=1)
    ids = q.put_many(["a", "b", "c"])
    # Each command finishes only once all three have started: one at a time would time out.
    pq("worker", db, "-c", "3", "--exit-when-empty", "--", *child, "starts", "3")
    assert [q.item(i).status for i in ids] == [Status.DONE] * 3
    assert records(tmp_path, "gave") == []


def test_the_lease_is_renewed_while_the_command_runs(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db)
    job = q.put("long")
    go, err = tmp_path / "go", tmp_path / "worker.err"
    worker = start_pq("worker", db, "--lease", "1s", "--", *child, "wait", str(go), err=err)
    wait_for(lambda: started_pids(tmp_path), "the job to start")
    first_lease = q.item(job).lease_expires_at.timestamp()
    # Past the first lease, the job is still held, under a later lease.
    wait_for(lambda: time.time() > first_lease + 1.0, "the first lease to end")
    assert pq_core.Manager(q).sweep().requeued == 0
    item = q.item(job)
    assert item.status == Status.IN_PROGRESS and item.lease_expires_at.timestamp() > time.time()
    go.touch()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, err.read_text()
    assert q.item(job).status == Status.DONE and q.item(job).attempts == 1


def test_worker_stops_cleanly_on_sigterm_after_the_job_in_hand(db: str, tmp_path: Path) -> None:
    q = pq_core.open(db)
    first = q.put("slow")
    second = q.put("never started")
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pq_core.cli", "worker", db, "--",
         "sh", "-c", f"touch {marker}; sleep 1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(marker.exists, "the worker to start its job")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert q.item(first).status == Status.DONE
    assert q.item(second).status == Status.READY


def test_a_job_taken_away_while_its_command_runs_stops_the_command(
    db: str, tmp_path: Path, child: list[str]
) -> None:
    q = pq_core.open(db)
    job = q.put("long")
    err = tmp_path / "worker.err"
    worker = start_pq(
        "worker", db, "--lease", "0.3s", "--max-jobs", "1", "--", *child, "sleep", err=err
    )
    [pid] = wait_for(lambda: started_pids(tmp_path), "the job to start")
    q.requeue([job])  # an operator gives it to someone else: this run must not go on
    assert worker.wait(timeout=30) == 0, err.read_text()
    assert records(tmp_path, "signal") == [["SIGTERM", str(pid)]]
    assert "outcome=lost" in err.read_text()
    assert q.item(job).status == Status.READY
