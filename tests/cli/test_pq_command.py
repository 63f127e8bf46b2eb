"""The `pq` command, run as a user runs it: a real process, reading what it prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pq_core


def pq(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pq_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pq {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.sqlite")


def test_put_takes_a_payload_argument_or_one_job_per_stdin_line(db: str) -> None:
    assert pq("put", db, "hello").stdout.split() == ["1"]
    assert pq("put", db, stdin="a\nb\n\nc\n").stdout.split() == ["2", "3", "4"]
    assert pq("put", db, '{"n": 1}', "--json").stdout.split() == ["5"]
    payloads = [i.payload for i in pq_core.open(db).items(newest_first=False)]
    assert payloads == ["hello", "a", "b", "c", {"n": 1}]


def test_get_prints_the_claim_as_json_and_done_with_its_token_finishes_it(db: str) -> None:
    pq("put", db, "job")
    claim = json.loads(pq("get", db, "--lease", "5m").stdout)
    assert claim["payload"] == "job" and claim["status"] == "in_progress" and claim["token"]
    pq("done", db, str(claim["id"]), "--token", claim["token"])
    assert pq_core.open(db).item(claim["id"]).status == pq_core.Status.DONE


def test_get_on_an_empty_queue_exits_1_with_a_message(db: str) -> None:
    pq_core.open(db)
    result = pq("get", db, check=False)
    assert result.returncode == 1 and "no job ready" in result.stderr and not result.stdout


def test_fail_gives_the_job_back_and_records_the_error(db: str) -> None:
    pq("put", db, "job")
    claim = json.loads(pq("get", db).stdout)
    out = pq("fail", db, str(claim["id"]), "--token", claim["token"], "--error", "boom")
    assert out.stdout.strip() == "ready"
    item = pq_core.open(db).item(claim["id"])
    assert item.status == pq_core.Status.READY and item.last_error == "boom"


def test_a_done_with_a_stale_token_is_refused_in_one_line(db: str) -> None:
    q = pq_core.open(db)
    q.put("job")
    first = json.loads(pq("get", db, "--lease", "0.01").stdout)
    time.sleep(0.05)
    pq_core.Manager(q).sweep()
    q.get()  # another consumer holds it now
    result = pq("done", db, str(first["id"]), "--token", first["token"], check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "claimed again since" in result.stderr


def test_worker_runs_the_command_per_job_done_on_success_failed_with_stderr_otherwise(
    db: str,
) -> None:
    q = pq_core.open(db, max_attempts=1)
    good, bad = q.put("fine"), q.put("explode")
    script = 'read p; if [ "$p" = explode ]; then echo "it blew up: $p" >&2; exit 3; fi'
    pq("worker", db, "--exit-when-empty", "--", "sh", "-c", script)
    assert q.item(good).status == pq_core.Status.DONE
    failed = q.item(bad)
    assert failed.status == pq_core.Status.DEAD and "it blew up: explode" in failed.last_error


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
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the worker never started its job"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert q.item(first).status == pq_core.Status.DONE
    assert q.item(second).status == pq_core.Status.READY


def test_operator_commands_list_show_requeue_remove_and_purge(db: str) -> None:
    q = pq_core.open(db, max_attempts=1)
    ids = q.put_many(["one", "two", "three"])
    item = q.get()
    q.fail(item, error="bad")  # one attempt allowed: dead
    listing = pq("ls", db, "--status", "dead", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in listing] == [item.id]
    assert "dead" in pq("stats", db).stdout
    assert json.loads(pq("stats", db, "--json").stdout)["default"]["dead"] == 1
    shown = json.loads(pq("show", db, str(item.id)).stdout)
    assert shown["last_error"] == "bad" and shown["history"][0]["kind"] == "dead"
    assert pq("requeue", db, str(item.id)).stdout.strip() == "requeued 1 job(s)"
    assert q.item(item.id).status == pq_core.Status.READY
    assert pq("rm", db, str(ids[1])).stdout.strip() == "deleted 1 job(s)"
    for job in q.get_many(5):
        q.done(job)
    assert pq("purge", db, "--older-than", "0s", "--dry-run").stdout.strip() == (
        "would purge 2 job(s)"
    )
    assert pq("purge", db, "--older-than", "0s").stdout.strip() == "purged 2 job(s)"
    assert q.count() == 0
    kinds = pq("events", db).stdout
    assert "requeue" in kinds and "delete" in kinds and "purge" in kinds
    assert "consumer" in pq("workers", db).stdout


def test_manager_once_takes_back_an_expired_lease(db: str) -> None:
    q = pq_core.open(db)
    job = q.put("job")
    q.get(lease=0.01)
    time.sleep(0.05)
    out = pq("manager", db, "--once").stdout
    assert out.startswith("requeued 1")
    assert q.item(job).status == pq_core.Status.READY


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stats", "/no/such/folder/jobs.sqlite"], "no such store"),
        (["put", "/no/such/folder/jobs.sqlite", "x"], "folder /no/such/folder does not exist"),
        (["ls", "{db}", "--status", "finished"], "unknown status 'finished'"),
        (["purge", "{db}", "--older-than=-1d"], "older_than '-1d' is not a duration"),
        (["purge", "{db}", "--older-than"], "expected one argument"),
        (["frobnicate", "{db}"], "invalid choice: 'frobnicate'"),
        (["manager", "{db}", "--interval", "soon"], "interval 'soon' is not a duration"),
        (["show", "{db}", "999"], "no job 999"),
        (["put", "{db}", "{not json", "--json"], "Expecting"),
        (["worker", "{db}"], "worker needs a command"),
    ],
)
def test_user_errors_are_one_line_on_stderr_and_exit_2(
    db: str, args: list[str], expected: str
) -> None:
    pq_core.open(db).put("keep me")
    result = pq(*(a.replace("{db}", db) for a in args), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("pq") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert [i.payload for i in pq_core.open(db).items()] == ["keep me"]


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n" * 100)
    result = pq("put", str(path), "x", check=False)
    assert result.returncode == 2 and "not a SQLite database" in result.stderr
    assert path.read_text() == "my notes\n" * 100
    assert not os.path.exists(str(path) + "-wal")
