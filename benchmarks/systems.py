"""The queues under test, each behind the same small adapter so a workload reads the same for all.

An adapter opens its store in a folder of its own and sets the durability asked for:
`synchronous=FULL` or `NORMAL`, with write-ahead logging, on every system. Where a peer has no
option for it, the pragma is set on the peer's own connection after it opened (said per class).

- `claim()` returns `(handle, payload)` or None when nothing is ready; `ack(handle)` finishes it.
- `put_many` is None where the system has no batch put.
- `preload()` fills the queue before a timed run, as fast as the system allows; it is not timed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

PAYLOAD_BYTES = 100
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def payload(seq: int) -> str:
    """A 100-byte ASCII payload that carries its sequence number, to count duplicates."""
    return f"{seq:010d}" + "." * (PAYLOAD_BYTES - 10)


def seq_of(data: str | bytes | memoryview) -> int:
    return int(bytes(data[:10]) if not isinstance(data, str) else data[:10])


def _pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return {"synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[sync], "journal": mode}


class System:
    name = ""
    note = ""  # how it was driven, where that differs from the others
    put_many: Callable[[Sequence[str]], None] | None = None

    def put(self, data: str) -> None:
        raise NotImplementedError

    def preload(self, payloads: Sequence[str]) -> None:
        raise NotImplementedError

    def claim(self) -> tuple[Any, str | bytes] | None:
        raise NotImplementedError

    def ack(self, handle: Any) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PQ(System):
    name = "pq"
    note = "pq_core.open(path, durability=...); get()/done(); consume(); put_many()"

    def __init__(self, folder: str, durability: str) -> None:
        import pq_core

        self.path = os.path.join(folder, "pq.sqlite")
        self.q = pq_core.open(self.path, durability=durability)
        self.put_many = self.q.put_many

    def put(self, data: str) -> None:
        self.q.put(data)

    def preload(self, payloads: Sequence[str]) -> None:
        for i in range(0, len(payloads), 10_000):
            self.q.put_many(payloads[i : i + 10_000])

    def claim(self) -> tuple[Any, str] | None:
        item = self.q.get()
        return None if item is None else (item, item.payload)

    def ack(self, handle: Any) -> None:
        self.q.done(handle)

    def claim_many(self, n: int) -> list[tuple[Any, str]]:
        return [(item, item.payload) for item in self.q.get_many(n)]

    def ack_many(self, handles: Sequence[Any]) -> None:
        self.q.done_many(handles)

    def consume(self, n: int, deadline: float) -> int:
        """Take n jobs through consume() (each acked with the next claim); returns how many."""
        done = 0
        for _item in self.q.consume():
            done += 1
            if done >= n or time.perf_counter() > deadline:
                self.q.stop()  # the loop acks this one and returns
        return done

    def settings(self) -> dict[str, Any]:
        return _pragmas(self.q.store._conn)  # read back only, to prove the durability

    def close(self) -> None:
        self.q.close()


class PQAsync(PQ):
    name = "pq async"
    note = (
        "await pq_core.open_async(path, durability=...); async for item in q.consume(), left "
        "by stop() (filled beforehand through the sync API, whose connection the pragmas are "
        "read from)"
    )

    def __init__(self, folder: str, durability: str) -> None:
        from benchmarks.pq_async import AsyncPQ

        super().__init__(folder, durability)
        self.aq = AsyncPQ(self.path, durability=durability)

    def consume(self, n: int, deadline: float) -> int:
        return self.aq.consume(n, deadline)

    def close(self) -> None:
        try:
            self.aq.close()
        finally:
            super().close()


# The limit: the least a durable SQLite queue can do per operation.
RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY,
    payload     TEXT    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,  -- 0 ready, 1 in progress, 2 done
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (id) WHERE status = 0;
"""
RAW_CLAIM = (
    "UPDATE jobs SET status = 1, lease_until = ?"
    " WHERE id = (SELECT id FROM jobs WHERE status = 0 ORDER BY id LIMIT 1)"
    " RETURNING id, payload"
)
RAW_CLAIM_MANY = (
    "UPDATE jobs SET status = 1, lease_until = ?"
    " WHERE id IN (SELECT id FROM jobs WHERE status = 0 ORDER BY id LIMIT ?)"
    " RETURNING id, payload"
)
RAW_ACK = "UPDATE jobs SET status = 2 WHERE id = ? AND status = 1"
RAW_INSERT = "INSERT INTO jobs (payload) VALUES (?)"


class Raw(System):
    name = "raw sqlite3"
    note = (
        "put: one INSERT per BEGIN IMMEDIATE…COMMIT; put_many: one executemany; claim: one "
        "UPDATE … RETURNING transaction, ack: a second transaction; consume: the ack of one job "
        "and the claim of the next in one transaction; batch: claim 10 in one UPDATE … LIMIT 10 "
        "transaction, ack them with one executemany in a second"
    )

    def __init__(self, folder: str, durability: str) -> None:
        self.path = os.path.join(folder, "raw.sqlite")
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
        self.conn.executescript(RAW_SCHEMA)

    def put(self, data: str) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute(RAW_INSERT, (data,))
        c.execute("COMMIT")

    def _put_many(self, payloads: Sequence[str]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(RAW_INSERT, [(p,) for p in payloads])
        c.execute("COMMIT")

    put_many = _put_many  # type: ignore[assignment]
    preload = _put_many

    def claim(self) -> tuple[Any, str] | None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        row = c.execute(RAW_CLAIM, (time.time() + 300,)).fetchone()
        c.execute("COMMIT")
        return row

    def ack(self, handle: Any) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute(RAW_ACK, (handle,))
        c.execute("COMMIT")

    def claim_many(self, n: int) -> list[tuple[Any, str]]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        rows = c.execute(RAW_CLAIM_MANY, (time.time() + 300, n)).fetchall()
        c.execute("COMMIT")
        return rows

    def ack_many(self, handles: Sequence[Any]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(RAW_ACK, [(h,) for h in handles])
        c.execute("COMMIT")

    def consume(self, n: int, deadline: float) -> int:
        c, prev, done = self.conn, None, 0
        while True:
            c.execute("BEGIN IMMEDIATE")
            if prev is not None:
                c.execute(RAW_ACK, (prev,))
            row = None
            if done < n and time.perf_counter() <= deadline:
                row = c.execute(RAW_CLAIM, (time.time() + 300,)).fetchone()
            c.execute("COMMIT")
            if row is None:
                return done
            prev = row[0]
            done += 1

    def settings(self) -> dict[str, Any]:
        return _pragmas(self.conn)

    def close(self) -> None:
        self.conn.close()


class PersistQueue(System):
    name = "persist-queue"
    note = (
        "SQLiteAckQueue: get(block=False, raw=True) then ack(id=…); no batch put; "
        "synchronous set on its connection (no option for it); WAL is its default"
    )

    def __init__(self, folder: str, durability: str, *, auto_resume: bool = True) -> None:
        import persistqueue

        self.path = os.path.join(folder, "persist-queue")
        self.q = persistqueue.SQLiteAckQueue(self.path, timeout=30.0, auto_resume=auto_resume)
        self.sync = SYNCHRONOUS[durability]
        self.q._conn.execute(f"PRAGMA synchronous = {self.sync}")
        self._empty = persistqueue.Empty

    def put(self, data: str) -> None:
        self.q.put(data)

    def preload(self, payloads: Sequence[str]) -> None:
        self.q._conn.execute("PRAGMA synchronous = OFF")  # not timed: only fill it fast
        for p in payloads:
            self.q.put(p)
        self.q._conn.execute(f"PRAGMA synchronous = {self.sync}")

    def claim(self) -> tuple[Any, str] | None:
        try:
            item = self.q.get(block=False, raw=True)
        except self._empty:
            return None
        return item["pqid"], item["data"]

    def ack(self, handle: Any) -> None:
        self.q.ack(id=handle)

    def settings(self) -> dict[str, Any]:
        return _pragmas(self.q._conn)

    def close(self) -> None:
        self.q.close()


class LiteQueue(System):
    name = "litequeue"
    note = (
        "LiteQueue: pop() then done(message_id); put_many is a loop of put() inside its "
        "transaction() (no batch API); it sets synchronous=NORMAL itself, reset after open"
    )

    def __init__(self, folder: str, durability: str) -> None:
        import litequeue

        self.path = os.path.join(folder, "litequeue.sqlite")
        self.q = litequeue.LiteQueue(self.path, queue_name="bench", timeout=30.0)
        self.q.conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")

    def put(self, data: str) -> None:
        self.q.put(data)

    def _put_many(self, payloads: Sequence[str]) -> None:
        with self.q.transaction("IMMEDIATE"):
            for p in payloads:
                self.q.put(p)

    put_many = _put_many  # type: ignore[assignment]
    preload = _put_many

    def claim(self) -> tuple[Any, str] | None:
        m = self.q.pop()
        return None if m is None else (m.message_id, m.data)

    def ack(self, handle: Any) -> None:
        self.q.done(handle)

    def settings(self) -> dict[str, Any]:
        return _pragmas(self.q.conn)

    def close(self) -> None:
        self.q.close()


class Huey(System):
    name = "huey"
    note = (
        "SqliteStorage: enqueue() / dequeue(); dequeue deletes the task in one transaction, "
        "so its claim+ack is one commit and at-most-once (no ack, a crash loses the job); "
        "no batch put; FULL via fsync=True, NORMAL set on its connection"
    )

    def __init__(self, folder: str, durability: str) -> None:
        from huey.storage import SqliteStorage

        self.path = os.path.join(folder, "huey.sqlite")
        self.sync = SYNCHRONOUS[durability]
        self.s = SqliteStorage(
            name="bench", filename=self.path, fsync=durability == "full", timeout=30.0
        )
        self.s.conn.execute(f"PRAGMA synchronous = {self.sync}")

    def put(self, data: str) -> None:
        self.s.enqueue(data.encode())

    def preload(self, payloads: Sequence[str]) -> None:
        self.s.conn.execute("PRAGMA synchronous = OFF")  # not timed: only fill it fast
        for p in payloads:
            self.s.enqueue(p.encode())
        self.s.conn.execute(f"PRAGMA synchronous = {self.sync}")

    def claim(self) -> tuple[Any, bytes] | None:
        data = self.s.dequeue()
        return None if data is None else (None, data)

    def ack(self, handle: Any) -> None:
        pass  # dequeue already removed it

    def settings(self) -> dict[str, Any]:
        return _pragmas(self.s.conn)

    def close(self) -> None:
        self.s.close()


SYSTEMS: dict[str, type[System]] = {
    "pq": PQ,
    "pq-async": PQAsync,
    "raw": Raw,
    "persist-queue": PersistQueue,
    "litequeue": LiteQueue,
    "huey": Huey,
}
PEERS = ("persist-queue", "litequeue", "huey")


def open_system(key: str, folder: str, durability: str, **options: Any) -> System:
    os.makedirs(folder, exist_ok=True)
    return SYSTEMS[key](folder, durability, **options)
