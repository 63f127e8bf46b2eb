"""No store by accident and `--queue` meaning one queue everywhere (issue 8 points 1 and 2),
pause and resume, init and check. Run in-process through `main()`: what a user types, what
they read back."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

import pq_core
from pq_core import Status
from pq_core.cli import main


@pytest.fixture
def pq(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """`pq(*args)` → (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def two_queues(tmp_path: Path) -> tuple[str, int, int]:
    """A store with one job in `default` and one in `reports`."""
    db = str(tmp_path / "jobs.sqlite")
    mine = pq_core.open(db).put("mine")
    theirs = pq_core.open(db, queue="reports").put("theirs")
    return db, mine, theirs


@pytest.mark.parametrize(
    "command",
    [
        ["get"],
        ["done", "1", "--token", "x"],
        ["fail", "1", "--token", "x"],
        ["stats"],
        ["ls"],
        ["show", "1"],
        ["requeue", "1"],
        ["rm", "1"],
        ["purge"],
        ["events"],
        ["workers"],
        ["manager", "--once"],
        ["metrics"],
        ["pause"],
        ["resume"],
        ["check"],
        ["worker", "--exit-when-empty", "--", "true"],
    ],
)
def test_no_command_but_put_and_init_creates_a_store_from_a_typo(
    pq, tmp_path: Path, command
) -> None:  # type: ignore[no-untyped-def]
    typo = str(tmp_path / "typo5.sqlite")
    name, *rest = command
    status, out, err = pq(name, typo, *rest)
    assert status == 2 and "no such store" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_put_and_init_create_a_store(pq, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = str(tmp_path / "made.sqlite")
    assert pq("init", made)[0] == 0 and os.path.exists(made)
    assert pq("init", made)[:2] == (0, f"ready: {made}\n")  # twice is harmless
    put = str(tmp_path / "put.sqlite")
    assert pq("put", put, "x")[:2] == (0, "1\n")


def test_with_queue_every_read_shows_that_queue_only(pq, two_queues) -> None:  # type: ignore[no-untyped-def]
    db, mine, theirs = two_queues
    pq_core.open(db, queue="reports").pause()  # an event of theirs
    stats = json.loads(pq("stats", db, "-q", "default", "--json")[1])
    assert list(stats) == ["default"]
    _, out, _ = pq("stats", db, "-q", "nothing")  # asked for: shown, all zero, nothing else
    assert out.splitlines()[1].split()[:2] == ["nothing", "0"] and "default" not in out
    listed = [
        json.loads(line)["id"] for line in pq("ls", db, "-q", "default", "--json")[1].splitlines()
    ]
    assert listed == [mine]
    assert pq("events", db, "-q", "default", "--json")[1] == ""
    [event] = pq("events", db, "-q", "reports", "--json")[1].splitlines()
    assert json.loads(event)["queue"] == "reports"


def test_without_queue_reads_show_every_queue_that_exists(pq, two_queues) -> None:  # type: ignore[no-untyped-def]
    db, mine, theirs = two_queues
    listed = [json.loads(line)["id"] for line in pq("ls", db, "--json")[1].splitlines()]
    assert sorted(listed) == [mine, theirs]
    assert sorted(json.loads(pq("stats", db, "--json")[1])) == ["default", "reports"]
    empty = pq_core.open(str(Path(db).with_name("empty.sqlite")))
    empty.close()
    _, out, _ = pq("stats", str(Path(db).with_name("empty.sqlite")))
    assert "default" not in out and "no jobs" in out  # no made-up row


@pytest.mark.parametrize(
    "command",
    [["rm"], ["requeue"], ["show"], ["done", "--token", "t"], ["fail", "--token", "t"]],
)
def test_with_queue_an_id_of_another_queue_is_refused_and_nothing_changes(
    pq,
    two_queues,
    command,  # type: ignore[no-untyped-def]
) -> None:
    db, _mine, theirs = two_queues
    name, *rest = command
    status, _, err = pq(name, db, str(theirs), *rest, "-q", "default")
    assert status == 2 and "reports" in err and "default" in err and err.count("\n") == 1
    item = pq_core.open(db).item(theirs)
    assert (item.status, item.attempts) == (Status.READY, 0)


def test_without_queue_id_commands_act_on_the_id(pq, two_queues) -> None:  # type: ignore[no-untyped-def]
    db, _mine, theirs = two_queues
    assert pq("rm", db, str(theirs))[:2] == (0, "deleted 1 job\n")
    with pytest.raises(pq_core.ItemNotFound):
        pq_core.open(db).item(theirs)


def test_purge_without_queue_purges_every_queue_and_with_queue_only_that_one(
    pq,
    two_queues,  # type: ignore[no-untyped-def]
) -> None:
    db, _mine, _theirs = two_queues
    for name in ("default", "reports"):
        q = pq_core.open(db, queue=name)
        q.done(q.get())
    assert pq("purge", db, "--older-than", "0s", "-q", "reports")[1].startswith("purged 1 ")
    assert pq_core.open(db).count("done", queue=None) == 1
    assert pq("purge", db, "--older-than", "0s")[1].startswith("purged 1 ")
    assert pq_core.open(db).count("done", queue=None) == 0


def test_pause_and_resume_a_queue_from_the_shell(pq, two_queues) -> None:  # type: ignore[no-untyped-def]
    db, _mine, _theirs = two_queues
    assert pq("pause", db, "-q", "reports")[:2] == (0, "paused reports\n")
    assert pq("pause", db, "-q", "reports")[1] == "reports was paused already\n"
    assert pq("get", db, "-q", "reports")[0] == 1  # nothing handed out
    assert pq("put", db, "-q", "reports", "more")[0] == 0  # puts go on
    assert json.loads(pq("stats", db, "--json")[1])["reports"]["paused"] is True
    assert "paused" in pq("stats", db)[1]
    assert [e["kind"] for e in map(json.loads, pq("events", db, "--json")[1].split("\n")[:-1])][
        0
    ] == "pause"
    assert pq("resume", db, "-q", "reports")[:2] == (0, "resumed reports\n")
    assert pq("get", db, "-q", "reports")[0] == 0


def test_check_says_ok_or_names_each_problem(pq, two_queues) -> None:  # type: ignore[no-untyped-def]
    db, _mine, _theirs = two_queues
    assert pq("check", db)[:2] == (0, f"ok: {db}\n")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE pq_counters SET n = n + 5 WHERE queue = 'reports' AND kind = 'ready'")
    conn.commit()
    conn.close()
    status, out, _ = pq("check", db)
    assert status == 1 and "'reports'" in out and "says 6" in out and "say 1" in out
    assert json.loads(pq("check", db, "--json")[1])["ok"] is False


def test_get_claims_for_a_process_that_exits_so_only_the_lease_brings_it_back(
    pq,
    two_queues,  # type: ignore[no-untyped-def]
) -> None:
    db, mine, _theirs = two_queues
    got = json.loads(pq("get", db, "-q", "default", "--lease", "1h")[1])
    assert got["id"] == mine
    assert pq_core.Manager(pq_core.open(db)).sweep().requeued == 0  # the claimer is gone: fine
    assert pq("done", db, str(mine), "--token", got["token"])[0] == 0
    assert [w for w in pq_core.open(db).workers() if w.kind == "consumer"] == []
