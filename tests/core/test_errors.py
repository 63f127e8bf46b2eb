"""Every error of SPEC 5: a clear QueueError naming the path or value, and the jobs intact."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import pq_core
from pq_core import Status
from pq_core.store.sqlite import SCHEMA_VERSION, SQLiteStore


def contents(db: str) -> list[tuple]:
    """Every job as stored, read without pq."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, payload, status, attempts FROM pq_jobs ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def integrity(db: str) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def store_with_jobs(db: str) -> Iterator[tuple[str, list[tuple]]]:
    """A store holding a few jobs in every state, and what it held before the test."""
    q = pq_core.open(db)
    q.put_many(["a", "b", "c"], max_attempts=1)
    q.put({"json": True})
    q.done(q.get())
    q.fail(q.get(), "boom")
    q.get()
    q.close()
    yield db, contents(db)


def assert_intact(db: str, before: list[tuple]) -> None:
    assert contents(db) == before
    assert integrity(db) == "ok"
    q = pq_core.open(db)
    assert q.stats()["default"].total == len(before)
    q.close()


# -- files ---------------------------------------------------------------------------------------


def test_a_path_whose_folder_does_not_exist_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(pq_core.StoreNotFound) as caught:
        pq_core.open(missing / "jobs.sqlite")
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, pq_core.QueueError)
    assert not (tmp_path / "no").exists()


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(pq_core.NotAStore, match=str(tmp_path)):
        pq_core.open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    text = b"these are my notes, not a database\n" * 200
    path.write_bytes(text)
    with pytest.raises(pq_core.NotAStore) as caught:
        pq_core.open(path)
    assert str(path) in str(caught.value) and "not a SQLite database" in str(caught.value)
    assert path.read_bytes() == text
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_a_sqlite_file_that_is_not_a_pq_store_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "app.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada')")
    conn.commit()
    conn.close()
    before = Path(path).read_bytes()
    with pytest.raises(pq_core.NotAStore) as caught:
        pq_core.open(path)
    assert path in str(caught.value) and "not a pq store" in str(caught.value)
    with pytest.raises(pq_core.NotAStore):
        pq_core.open(path, read_only=True)
    assert Path(path).read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
    conn.close()


def test_a_store_from_a_newer_version_is_refused_with_both_versions_named(
    store_with_jobs: tuple[str, list[tuple]],
) -> None:
    db, before = store_with_jobs
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    for read_only in (False, True):
        with pytest.raises(pq_core.SchemaTooNew) as caught:
            pq_core.open(db, read_only=read_only)
        message = str(caught.value)
        assert db in message and "99" in message and "upgrade" in message
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    assert_intact(db, before)


# -- read-only -----------------------------------------------------------------------------------

_AS_ANOTHER_USER = textwrap.dedent(
    """
    import json, os, sys
    import pq_core, pq_core.manager, pq_core.store.sqlite  # before dropping the right to read them
    if os.geteuid() == 0:  # root may write anything: become nobody to meet a read-only file
        os.setgid(65534)
        os.setuid(65534)
    db = sys.argv[1]
    out = {}
    try:
        pq_core.open(db)
        out["write"] = "opened"
    except pq_core.QueueError as exc:
        out["write"] = [type(exc).__name__, str(exc)]
    try:
        q = pq_core.open(db, read_only=True)
        out["counts"] = {s.value: n for s, n in q.stats()["default"].counts.items()}
        out["payloads"] = [i.payload for i in q.items(newest_first=False)]
        out["item"] = q.item(1).payload
        try:
            q.put("sneaked in")
            out["put"] = "stored"
        except pq_core.QueueError as exc:
            out["put"] = [type(exc).__name__, str(exc)]
    except pq_core.QueueError as exc:
        out["read"] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
    """
)


def test_a_read_only_file_is_refused_for_writing_and_opens_read_only(
    store_with_jobs: tuple[str, list[tuple]],
) -> None:
    db, before = store_with_jobs
    # A folder the other user may read but not write, as a shared read-only store would be in.
    folder = tempfile.mkdtemp(prefix="pq-ro-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "jobs.sqlite")
        shutil.copy(db, path)
        os.chmod(path, 0o444)
        run = subprocess.run(
            [sys.executable, "-c", _AS_ANOTHER_USER, path],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        kind, message = out["write"]
        assert kind == "StoreReadOnly" and path in message and "read_only=True" in message
        assert "read" not in out, f"read-only open failed: {out.get('read')}"
        assert out["counts"] == {"ready": 1, "in_progress": 1, "done": 1, "dead": 1}
        assert out["payloads"] == ["a", "b", "c", {"json": True}]
        assert out["item"] == "a"
        kind, message = out["put"]
        assert kind == "StoreReadOnly" and path in message
        assert all(name.startswith("jobs.sqlite") for name in os.listdir(folder))
        os.chmod(path, 0o600)
        assert_intact(path, before)
    finally:
        shutil.rmtree(folder)


def test_a_store_opened_read_only_reads_and_refuses_every_change(
    store_with_jobs: tuple[str, list[tuple]],
) -> None:
    db, before = store_with_jobs
    q = pq_core.open(db, read_only=True)
    assert q.stats()["default"].total == 4
    assert len(q.items()) == 4 and q.item(1).payload == "a"
    assert q.purge(0, "done", dry_run=True) == 1
    for change in (
        lambda: q.put("x"),
        lambda: q.put_many(["x"]),
        q.get,
        lambda: q.get_many(2),
        lambda: q.requeue([1, 2]),
        lambda: q.delete([1]),
        lambda: q.purge(0, "done"),
        lambda: q.update_item_status(1, "ready"),
        lambda: pq_core.Manager(q).sweep(),
    ):
        with pytest.raises(pq_core.StoreReadOnly, match=db):
            change()
    q.close()
    assert_intact(db, before)


def test_opening_read_only_a_store_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with pytest.raises(pq_core.StoreNotFound, match=str(path)):
        pq_core.open(path, read_only=True)
    assert not path.exists()


# -- locked, full ----------------------------------------------------------------------------------


def test_a_store_locked_past_the_busy_timeout_is_a_clear_error_and_nothing_is_lost(
    store_with_jobs: tuple[str, list[tuple]],
) -> None:
    db, before = store_with_jobs
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        q = pq_core.open(db, busy_timeout=0.2)
        assert q.stats()["default"].total == 4  # readers are not blocked by a writer
        for write in (lambda: q.put("x"), q.get, lambda: q.requeue([1])):
            with pytest.raises(pq_core.StoreLocked) as caught:
                write()
            assert db in str(caught.value) and "locked" in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_intact(db, before)
    new = q.put("after the lock")
    assert q.item(new).payload == "after the lock"
    q.close()


class SmallDiskStore(SQLiteStore):
    """A store whose file may not grow past `max_pages` pages: what a full disk looks like to
    SQLite (SQLITE_FULL), without needing a small filesystem to fill."""

    max_pages = 0

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        if self.max_pages:
            conn.execute(f"PRAGMA max_page_count = {self.max_pages}")
        return conn


def test_a_full_disk_fails_the_put_writes_nothing_and_keeps_earlier_jobs(
    store_with_jobs: tuple[str, list[tuple]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, before = store_with_jobs
    conn = sqlite3.connect(db)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    monkeypatch.setattr(SmallDiskStore, "max_pages", pages + 4)
    q = pq_core.Queue(SmallDiskStore(db))
    with pytest.raises(pq_core.DiskFull) as caught:
        q.put("x" * 200_000)
    assert db in str(caught.value) and "full" in str(caught.value)
    with pytest.raises(pq_core.DiskFull):
        q.put_many(["y" * 20_000] * 10)
    assert q.stats()["default"].total == len(before)
    small = q.put("a small job still fits")  # the store is usable as soon as there is room
    assert q.item(small).status is Status.READY
    q.close()
    assert contents(db)[:-1] == before
    assert integrity(db) == "ok"


# -- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (object(), "object"),
        ({"tags": {"a", "b"}}, "dict"),
        ([1, 2, math.nan], "list"),
        (timedelta(seconds=1), "timedelta"),
    ],
)
def test_a_payload_that_is_not_str_bytes_or_json_is_refused_by_type(
    db: str, payload: object, named: str
) -> None:
    q = pq_core.open(db)
    q.put("earlier")
    with pytest.raises(pq_core.PayloadError) as caught:
        q.put(payload)
    assert isinstance(caught.value, TypeError)
    assert named in str(caught.value) and "JSON" in str(caught.value)
    assert [i.payload for i in q.items()] == ["earlier"]
    q.close()


@pytest.mark.parametrize(
    "payload",
    ["x" * 101, "é" * 51, b"\0" * 101, {"k": "x" * 95}, ["x" * 97]],
    ids=["str", "utf-8 bytes of str", "bytes", "json object", "json list"],
)
def test_a_payload_over_max_payload_bytes_is_refused_with_its_size(
    db: str, payload: object
) -> None:
    q = pq_core.open(db, max_payload_bytes=100)
    q.put("x" * 100)
    with pytest.raises(pq_core.PayloadTooLarge) as caught:
        q.put(payload)
    assert isinstance(caught.value, ValueError)
    assert "max_payload_bytes=100" in str(caught.value)
    assert q.stats()["default"].total == 1
    q.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.put("x", delay=-1),
        lambda q: q.put("x", delay="soon"),
        lambda q: q.put("x", delay=timedelta(seconds=-5)),
        lambda q: q.put("x", delay=math.inf),
        lambda q: q.get(lease=-30),
        lambda q: q.get(lease=math.nan),
        lambda q: q.get(timeout="forever"),
        lambda q: q.get_many(5, lease="1 fortnight"),
        lambda q: q.purge(older_than=-1),
        lambda q: q.purge(older_than="7 days"),
        lambda q: q.purge(older_than=True),
        lambda q: pq_core.Manager(q, lease_timeout=-1),
        lambda q: pq_core.Manager(q, interval="often"),
        lambda q: pq_core.Manager(q, interval=0),
        lambda q: pq_core.Manager(q, max_attempts=0),
    ],
)
def test_a_negative_or_nonsense_duration_is_refused_naming_the_value(db: str, call) -> None:  # type: ignore[no-untyped-def]
    q = pq_core.open(db)
    job_id = q.put("x")
    with pytest.raises(pq_core.InvalidValue) as caught:
        call(q)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert any(word in message for word in ("delay", "lease", "timeout", "older_than", "interval",
                                             "max_attempts")), message  # fmt: skip
    assert q.item(job_id).status is Status.READY
    q.close()


@pytest.mark.parametrize(
    "options",
    [
        {"lease": -1},
        {"busy_timeout": "a while"},
        {"max_attempts": 0},
        {"max_payload_bytes": -5},
        {"durability": "sometimes"},
        {"queue": ""},
    ],
)
def test_a_nonsense_option_of_open_is_refused_naming_it(db: str, options: dict) -> None:
    with pytest.raises(pq_core.InvalidValue) as caught:
        pq_core.open(db, **options)
    [(name, value)] = options.items()
    assert name in str(caught.value) or repr(value) in str(caught.value)


def test_an_unknown_id_raises_item_not_found_naming_it(db: str) -> None:
    q = pq_core.open(db)
    q.put("x")
    for call in (
        lambda: q.item(31337),
        lambda: q.get_item(31337),
        lambda: q.update_item_status(31337, "done"),
        lambda: q.update_job_status(31337),
    ):
        with pytest.raises(pq_core.ItemNotFound) as caught:
            call()
        assert isinstance(caught.value, KeyError) and "31337" in str(caught.value)
    with pytest.raises(pq_core.InvalidValue, match="'abc'"):
        q.item("abc")  # type: ignore[arg-type]
    assert q.stats()["default"].total == 1
    q.close()


def test_errors_are_queue_errors_without_a_chained_driver_traceback(db: str) -> None:
    Path(db).write_text("not a database " * 100)
    with pytest.raises(pq_core.QueueError) as caught:
        pq_core.open(db)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda q: q.put("x", priority=2**70), "priority"),
        (lambda q: q.put("x", max_attempts=2**70), "max_attempts"),
        (lambda q: q.get_many(2**70), "n"),
        (lambda q: q.item(2**70), "job id"),
        (lambda q: q.requeue([2**64]), "job id"),
    ],
)
def test_a_number_too_large_for_the_store_is_refused_naming_it(db: str, call, named: str) -> None:  # type: ignore[no-untyped-def]
    q = pq_core.open(db)
    job_id = q.put("x")
    with pytest.raises(pq_core.InvalidValue, match=named):
        call(q)
    assert q.item(job_id).status is Status.READY
    q.close()
