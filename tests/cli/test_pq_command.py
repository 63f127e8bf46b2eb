"""The `pq` command, run as a user runs it: a real process, reading what it prints."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import pq_core

from .conftest import lines, pq, start_pq, wait_for


def test_put_takes_a_payload_argument_or_one_job_per_stdin_line(db: str) -> None:
    assert pq("put", db, "hello").stdout.split() == ["1"]
    assert pq("put", db, stdin="a\nb\n\nc\n").stdout.split() == ["2", "3", "4"]
    assert pq("put", db, '{"n": 1}', "--json").stdout.split() == ["5"]
    assert pq("put", db, "--priority", "5", "options first").stdout.split() == ["6"]
    assert pq("put", db, "--", "-starts with a dash").stdout.split() == ["7"]
    items = pq_core.open(db).items(newest_first=False)
    assert [i.payload for i in items] == [
        "hello", "a", "b", "c", {"n": 1}, "options first", "-starts with a dash"
    ]  # fmt: skip
    assert items[5].priority == 5


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


def test_operator_commands_list_show_requeue_remove_and_purge(db: str) -> None:
    q = pq_core.open(db, max_attempts=1)
    ids = q.put_many(["one", "two", "three"])
    item = q.get()
    q.fail(item, error="bad")  # one attempt allowed: dead
    listing = pq("ls", db, "--status", "dead", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in listing] == [item.id]
    assert "dead" in pq("stats", db).stdout
    assert json.loads(pq("stats", db, "--json").stdout)["default"]["dead"] == 1
    shown = json.loads(pq("show", db, str(item.id), "--json").stdout)
    assert shown["last_error"] == "bad" and shown["history"][0]["kind"] == "dead"
    assert pq("requeue", db, str(item.id)).stdout.strip() == "requeued 1 job"
    assert q.item(item.id).status == pq_core.Status.READY
    assert pq("rm", db, str(ids[1])).stdout.strip() == "deleted 1 job"
    for job in q.get_many(5):
        q.done(job)
    assert pq("purge", db, "--older-than", "0s", "--dry-run").stdout.strip() == (
        "would purge 2 done jobs older than 0s"
    )
    assert pq("purge", db, "--older-than", "0s").stdout.strip() == (
        "purged 2 done jobs older than 0s"
    )
    assert q.count() == 0
    kinds = pq("events", db).stdout
    assert "requeue" in kinds and "delete" in kinds and "purge" in kinds
    assert "consumer" in pq("workers", db).stdout


def test_show_prints_a_job_and_its_history_for_a_person(db: str) -> None:
    q = pq_core.open(db, max_attempts=1)
    job = q.put({"to": "ada"}, priority=3)
    q.fail(q.get(), error="smtp said no")
    out = pq("show", db, str(job)).stdout
    assert f"job          {job}" in out
    assert "status       dead" in out and "attempts     1/1" in out and "priority     3" in out
    assert "last error   smtp said no" in out and 'payload      {"to": "ada"}' in out
    assert " UTC (" in out and "ago)" in out
    assert "at (UTC)" in out and "dead" in out.split("at (UTC)")[1]


def test_purging_live_jobs_needs_force_and_counts_have_thousands_separators(db: str) -> None:
    pq("put", db, stdin="job\n" * 1234)
    refused = pq("purge", db, "--status", "ready", "--older-than", "0s", check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert pq_core.open(db).count() == 1234  # nothing purged
    assert pq("purge", db, "-s", "unprocessed", "--older-than", "0s", "--dry-run").stdout == (
        "would purge 1,234 ready jobs older than 0s\n"
    )
    assert "1,234" in pq("stats", db).stdout
    out = pq("purge", db, "-s", "ready", "--older-than", "1h", "--force").stdout
    assert out == "purged 0 ready jobs older than 1h\n"  # all younger than an hour
    out = pq("purge", db, "-s", "ready", "--older-than", "0s", "--force").stdout
    assert out == "purged 1,234 ready jobs older than 0s\n"
    assert pq_core.open(db).count() == 0


def test_ls_says_on_stderr_when_more_jobs_than_the_limit_exist(db: str) -> None:
    pq_core.open(db).put_many([f"job {n}" for n in range(5)])
    shown = pq("ls", db, "--limit", "3")
    assert len(shown.stdout.splitlines()) == 1 + 3
    assert "more jobs after these 3" in shown.stderr and "--offset 3" in shown.stderr
    rest = pq("ls", db, "--limit", "3", "--offset", "3")
    assert len(rest.stdout.splitlines()) == 1 + 2 and rest.stderr == ""
    exact = pq("ls", db, "--limit", "5", "--json")
    assert len(exact.stdout.splitlines()) == 5 and exact.stderr == ""


def test_every_read_command_has_json(db: str) -> None:
    q = pq_core.open(db)
    job = q.put("x")
    q.requeue([q.get().id])
    stats = json.loads(pq("stats", db, "--json").stdout)
    assert stats["default"]["ready"] == 1 and len(stats["default"]["done_per_minute"]) == 30
    [listed] = [json.loads(line) for line in pq("ls", db, "--json").stdout.splitlines()]
    assert listed["id"] == job and listed["status"] == "ready"
    assert json.loads(pq("show", db, str(job), "--json").stdout)["history"][0]["kind"] == "requeue"
    [event] = [json.loads(line) for line in pq("events", db, "--json").stdout.splitlines()]
    assert event["kind"] == "requeue" and event["job_ids"] == [job] and event["at"]
    [worker] = [json.loads(line) for line in pq("workers", db, "--json").stdout.splitlines()]
    assert worker["kind"] == "consumer" and isinstance(worker["pid"], int)


def test_manager_once_takes_back_an_expired_lease(db: str) -> None:
    q = pq_core.open(db)
    job = q.put("job")
    q.get(lease=0.01)
    time.sleep(0.05)
    out = pq("manager", db, "--once").stdout
    assert out == "requeued 1 job, dead-lettered 0 jobs, 0 crashed workers\n"
    assert q.item(job).status == pq_core.Status.READY


def test_manager_logs_its_start_each_sweep_that_changed_something_and_its_stop(
    db: str, tmp_path: Path
) -> None:
    q = pq_core.open(db)
    job = q.put("job")
    err = tmp_path / "manager.err"
    manager = start_pq("manager", db, "--interval", "0.05s", err=err)
    wait_for(lambda: "started" in err.read_text(), "the manager to start")
    q.get(lease=0.01)  # a consumer that will not come back in time
    wait_for(lambda: q.item(job).status == pq_core.Status.READY, "the sweep to take it back")
    manager.send_signal(signal.SIGTERM)
    assert manager.wait(timeout=30) == 0
    logged = err.read_text().splitlines()
    assert len(logged) == 3, logged  # idle sweeps say nothing
    assert "pq manager: started on " in logged[0] and "a sweep every 0.05s" in logged[0]
    assert logged[1].endswith("swept: requeued 1 job, dead-lettered 0 jobs, 0 crashed workers")
    assert logged[2].endswith("pq manager: stopped")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_events_follow_prints_new_events_as_they_come(
    db: str, tmp_path: Path, stop: signal.Signals
) -> None:
    q = pq_core.open(db)
    ids = q.put_many(["a", "b"])
    q.delete([ids[0]])
    out, err = tmp_path / "events.out", tmp_path / "events.err"
    follower = start_pq("events", db, "--follow", "--json", err=err, out=out)
    try:
        wait_for(lambda: len(lines(out)) == 1, "the past event")
        q.delete([ids[1]])
        wait_for(lambda: len(lines(out)) == 2, "the new event")
        deleted = [json.loads(line)["job_ids"] for line in lines(out)]
        assert deleted == [[ids[0]], [ids[1]]]  # oldest first
    finally:
        follower.send_signal(stop)  # either ends the following, with status 0
        assert follower.wait(timeout=30) == 0 and err.read_text() == ""


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
