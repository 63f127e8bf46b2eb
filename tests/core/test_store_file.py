"""The store file is the user's alone (issue 7 point 7): who may initialise it, its modes, another
user's file, a damaged or truncated store, an old format migrated forward."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import pq_core
from pq_core import Status
from pq_core.store.sqlite import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's file")


def modes(db: str) -> dict[str, int]:
    return {
        suffix or "store": os.stat(db + suffix).st_mode & 0o777
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(db + suffix)
    }


def test_a_new_store_and_its_log_files_are_readable_by_the_owner_only(db: str) -> None:
    os.umask(0o000)  # whatever the umask says
    try:
        q = pq_core.open(db)
        q.put("x")
        assert modes(db) == {"store": 0o600, "-wal": 0o600, "-shm": 0o600}
        q.close()
    finally:
        os.umask(0o022)


def test_a_mode_option_shares_a_new_store_with_a_group_on_purpose(db: str) -> None:
    q = pq_core.open(db, mode=0o660)
    q.put("x")
    assert modes(db) == {"store": 0o660, "-wal": 0o660, "-shm": 0o660}
    q.close()
    for nonsense in (0o644 | 0o7000, 0o200, "rw", True):
        with pytest.raises(pq_core.InvalidValue, match="mode"):
            pq_core.open(db + "2", mode=nonsense)


def test_an_empty_file_of_this_user_is_adopted_and_made_private(db: str) -> None:
    Path(db).touch()
    os.chmod(db, 0o666)
    q = pq_core.open(db)
    q.put("x")
    assert modes(db) == {"store": 0o600, "-wal": 0o600, "-shm": 0o600}
    q.close()


def test_an_existing_store_keeps_the_mode_its_owner_chose(db: str) -> None:
    pq_core.open(db).close()
    os.chmod(db, 0o640)
    q = pq_core.open(db)
    q.put("x")
    assert os.stat(db).st_mode & 0o777 == 0o640
    q.close()


@needs_root
def test_an_empty_file_planted_by_another_user_is_not_adopted(db: str) -> None:
    Path(db).touch()
    os.chmod(db, 0o666)
    os.chown(db, NOBODY, NOBODY)
    with pytest.raises(pq_core.NotAStore, match="another user"):
        pq_core.open(db)
    info = os.stat(db)
    assert (info.st_size, info.st_mode & 0o777, info.st_uid) == (0, 0o666, NOBODY)
    assert sorted(os.listdir(os.path.dirname(db))) == ["jobs.sqlite"]


@needs_root
def test_a_store_of_another_user_is_refused_for_writing_and_opens_read_only(db: str) -> None:
    q = pq_core.open(db)
    job_id = q.put("theirs")
    q.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.chown(db + suffix, NOBODY, NOBODY)
    with pytest.raises(pq_core.StoreReadOnly, match=f"another user.*{NOBODY}"):
        pq_core.open(db)
    reader = pq_core.open(db, read_only=True)
    assert reader.item(job_id).payload == "theirs"
    reader.close()
    # Shared on purpose: group-writable and this process in the group.
    os.chown(db, NOBODY, os.getegid())
    os.chmod(db, 0o660)
    q = pq_core.open(db)
    assert q.put("ours too") > job_id
    q.close()


def test_a_damaged_store_is_store_corrupt_naming_the_path_and_nothing_is_written(
    db: str,
) -> None:
    q = pq_core.open(db, durability="normal")
    q.put_many([f"job {i} " + "x" * 200 for i in range(3000)])
    q.close()  # the last connection folds the log into the file
    assert not os.path.exists(db + "-wal")
    size = os.path.getsize(db)
    with open(db, "r+b") as f:  # scribble over every page but the first
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    with pytest.raises(pq_core.StoreCorrupt) as caught:
        q = pq_core.open(db)
        q.items(limit=5000)
        q.put("after the damage")
    message = str(caught.value)
    assert db in message and "damaged" in message and "not a SQLite database" not in message
    assert isinstance(caught.value, pq_core.StoreError)


def test_a_store_truncated_to_nothing_next_to_its_log_is_refused_not_recreated(db: str) -> None:
    q = pq_core.open(db)
    q.put_many(["a", "b"])
    keeper = sqlite3.connect(db)  # keeps the log from being folded in at close
    keeper.execute("BEGIN")
    keeper.execute("SELECT count(*) FROM pq_jobs").fetchall()
    q.close()
    wal = Path(db + "-wal").read_bytes()
    keeper.close()
    os.truncate(db, 0)
    Path(db + "-wal").write_bytes(wal)
    os.remove(db + "-shm") if os.path.exists(db + "-shm") else None
    with pytest.raises(pq_core.StoreCorrupt, match="empty but its write-ahead log is not"):
        pq_core.open(db)
    assert os.path.getsize(db) == 0 and Path(db + "-wal").read_bytes() == wal


def test_a_store_of_the_first_format_is_migrated_forward_with_every_job(db: str) -> None:
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO jobs (queue, payload, encoding, status, priority, attempts, max_attempts,"
        " created_at, updated_at, available_at, last_error, worker)"
        " VALUES ('default', 'old', 'str', 'dead', 0, 3, 3, 1, 2, 3,"
        " 'Traceback…\nValueError: bad 17', 'host:1:2')"
    )
    conn.execute(
        "INSERT INTO jobs (queue, payload, encoding, status, priority, max_attempts, created_at,"
        " updated_at, available_at) VALUES ('mail', 'new', 'str', 'ready', 5, 3, 4, 4, 4)"
    )
    conn.execute("INSERT INTO counts VALUES ('default', 'dead', 1), ('mail', 'ready', 1)")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    q = pq_core.open(db)
    stats = q.stats()
    assert stats["default"].counts[Status.DEAD] == 1 and stats["mail"].counts[Status.READY] == 1
    [group] = q.errors()
    assert group.signature == "ValueError: bad N"
    assert q.requeue([1]) == 1 and q.get().payload == "old"
    assert q.check().ok
    q.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
