"""The queues compared on PostgreSQL, each behind one small adapter (see `pg_workloads`).

Every adapter works in a database of its own (created for the measurement, see `pg_server`),
installs its schema when it opens, outside any timed section, and tags its connections with
the `application_name` it is given. Jobs carry the same 100-byte payload as on SQLite, whose
first 10 characters are the job's sequence number.

- `put(seq)` / `put_many(seqs)`: the producer calls; `aput` / `aput_many` for the asyncio
  peers (`is_async`), awaited one after another in one event loop.
- `preload(n)`: fill the queue before a timed run, as fast as the system allows; not timed.
- `drain(record, stop)`: one consumer process. Hands each job's payload to `record` and
  returns when the queue is empty or `stop` (a multiprocessing Event) is set.
- `wait_for_jobs(record, stop, ready)`: a consumer that waits for jobs to be put (latency).
- `left()`: jobs still ready or in progress, after the consumers ended.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from benchmarks.pg_server import TAG
from benchmarks.systems import payload

Record = Callable[[Any], None]
ENTRYPOINT = "bench"


def _app_name(spec: dict[str, Any]) -> str:
    return spec.get("app_name") or f"{TAG}-{os.getpid()}"


class PGSystem:
    name = ""
    note = ""
    is_async = False

    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]  # the measurement's own database, no application_name
        self.app_name = _app_name(spec)

    # producers: sync systems define put / put_many, asyncio ones aput / aput_many
    def put(self, seq: int) -> None:
        raise NotImplementedError

    def put_many(self, seqs: Sequence[int]) -> None:
        raise NotImplementedError

    async def aput(self, seq: int) -> None:
        raise NotImplementedError

    async def aput_many(self, seqs: Sequence[int]) -> None:
        raise NotImplementedError

    def preload(self, n: int) -> None:
        for start in range(0, n, 1000):
            seqs = range(start, min(n, start + 1000))
            if self.is_async:
                self.run(self.aput_many(seqs))
            else:
                self.put_many(seqs)

    def drain(self, record: Record, stop: Any) -> None:
        raise NotImplementedError

    def wait_for_jobs(self, record: Record, stop: Any, ready: Any) -> None:
        raise NotImplementedError

    def left(self) -> int:
        raise NotImplementedError

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _tagged_env(app_name: str) -> None:
    # libpq (psycopg, and so pq) reads PGAPPNAME for any URL without application_name: pq's
    # connections are tagged without putting a parameter into the URL pq is given.
    os.environ["PGAPPNAME"] = app_name


async def _until(stop: Any, then: Callable[[], Any]) -> None:
    """Poll another process's Event (a blocking wait would hold up the loop), then act."""
    while not stop.is_set():
        await asyncio.sleep(0.01)
    then()


# -- pq ---------------------------------------------------------------------------------------


class PQ(PGSystem):
    name = "pq"
    note = (
        "pq_core.open(url); put(); put_many(); a consumer is a consume() loop (ack fused with "
        "the next claim), left by stop(); latency: a consumer blocked in get(timeout=1)"
    )
    mode = "consume"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import pq_core

        _tagged_env(self.app_name)
        self.q = pq_core.open(self.url)

    def put(self, seq: int) -> None:
        self.q.put(payload(seq))

    def put_many(self, seqs: Sequence[int]) -> None:
        self.q.put_many([payload(s) for s in seqs])

    def drain(self, record: Record, stop: Any) -> None:
        q = self.q
        if self.mode == "consume":

            def stopper() -> None:
                stop.wait()
                q.stop()

            threading.Thread(target=stopper, daemon=True).start()
            for item in q.consume():
                record(item.payload)
        elif self.mode == "get_done":
            while not stop.is_set() and (item := q.get()) is not None:
                record(item.payload)
                q.done(item)
        else:
            while not stop.is_set() and (items := q.get_many(self.batch)):
                for item in items:
                    record(item.payload)
                q.done_many(items)

    def wait_for_jobs(self, record: Record, stop: Any, ready: Any) -> None:
        q = self.q
        ready.set()
        while not stop.is_set():
            item = q.get(timeout=1)
            if item is not None:
                record(item.payload)
                q.done(item)

    def left(self) -> int:
        n = 0
        while (item := self.q.get()) is not None:
            self.q.done(item)
            n += 1
        return n

    def close(self) -> None:
        self.q.close()


class PQGetDone(PQ):
    name = "pq get+done"
    note = "pq: get() then done(), two statements per job"
    mode = "get_done"


class PQBatch(PQ):
    name = "pq get_many(10)"
    note = "pq: get_many(10) then done_many() of the 10"
    mode = "batch"
    batch = 10


class PQAsync(PGSystem):
    name = "pq async"
    note = "pq_core.open_async(url): async for item in q.consume(), left by stop()"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        from benchmarks.pq_async import AsyncPQ

        _tagged_env(self.app_name)
        self.aq = AsyncPQ(self.url)

    def preload(self, n: int) -> None:
        import pq_core

        q = pq_core.open(self.url)
        for start in range(0, n, 1000):
            q.put_many([payload(s) for s in range(start, min(n, start + 1000))])
        q.close()

    def drain(self, record: Record, stop: Any) -> None:
        self.aq.consume(2**62, float("inf"), record, stop)

    def left(self) -> int:
        import pq_core

        q = pq_core.open(self.url)
        n = 0
        while (item := q.get()) is not None:
            q.done(item)
            n += 1
        q.close()
        return n

    def close(self) -> None:
        self.aq.close()


# -- raw psycopg: the least a PostgreSQL queue can do per operation -----------------------------

RAW_SCHEMA = """
CREATE TABLE raw_jobs (
    id          BIGSERIAL PRIMARY KEY,
    payload     TEXT     NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,  -- 0 ready, 1 in progress, 2 done
    lease_until TIMESTAMPTZ
);
CREATE INDEX raw_jobs_ready ON raw_jobs (id) WHERE status = 0;
"""
RAW_CLAIM = (
    "UPDATE raw_jobs SET status = 1, lease_until = now() + interval '5 minutes'"
    " WHERE id = (SELECT id FROM raw_jobs WHERE status = 0 ORDER BY id LIMIT 1"
    " FOR UPDATE SKIP LOCKED) RETURNING id, payload"
)
RAW_ACK = "UPDATE raw_jobs SET status = 2 WHERE id = %s AND status = 1"
RAW_FUSED = "WITH ack AS (UPDATE raw_jobs SET status = 2 WHERE id = %s AND status = 1) " + RAW_CLAIM
RAW_INSERT = "INSERT INTO raw_jobs (payload) VALUES (%s)"


class Raw(PGSystem):
    name = "raw psycopg"
    note = (
        "one statement per operation in autocommit (psycopg 3, prepared): put one INSERT; "
        "put_many one executemany in one transaction; claim one UPDATE … FOR UPDATE SKIP LOCKED "
        "… RETURNING, ack a second statement; fused: the ack of one job and the claim of the "
        "next in one statement. No LISTEN/NOTIFY, no lease bookkeeping beyond a column"
    )
    fused = False

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import psycopg

        self.conn = psycopg.connect(
            self.url, autocommit=True, application_name=self.app_name, prepare_threshold=0
        )
        if not self.conn.execute("SELECT to_regclass('raw_jobs') IS NOT NULL").fetchone()[0]:
            try:
                for statement in RAW_SCHEMA.split(";")[:-1]:
                    self.conn.execute(statement, prepare=False)
            except psycopg.errors.DuplicateTable:
                pass  # another consumer process created it meanwhile

    def put(self, seq: int) -> None:
        self.conn.execute(RAW_INSERT, (payload(seq),))

    def put_many(self, seqs: Sequence[int]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(RAW_INSERT, [(payload(s),) for s in seqs])

    def drain(self, record: Record, stop: Any) -> None:
        c = self.conn
        if self.fused:
            prev = None
            while True:
                if prev is None:
                    row = c.execute(RAW_CLAIM).fetchone()
                elif stop.is_set():
                    c.execute(RAW_ACK, (prev,))
                    return
                else:
                    row = c.execute(RAW_FUSED, (prev,)).fetchone()
                if row is None:
                    return
                record(row[1])
                prev = row[0]
        while not stop.is_set() and (row := c.execute(RAW_CLAIM).fetchone()) is not None:
            record(row[1])
            c.execute(RAW_ACK, (row[0],))

    def left(self) -> int:
        return self.conn.execute("SELECT count(*) FROM raw_jobs WHERE status < 2").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class RawFused(Raw):
    name = "raw psycopg fused"
    note = "raw psycopg, the ack of one job and the claim of the next in one statement"
    fused = True


# -- pgqueuer ---------------------------------------------------------------------------------


class PgQueuer(PGSystem):
    name = "pgqueuer"
    note = (
        "Queries.enqueue() one job per call, or lists of 1,000; its worker QueueManager.run() "
        "in drain mode with an empty async entrypoint, batch_size 10 (its default) or 1; "
        "asyncpg driver unless said; latency: the worker in continuous mode (LISTEN/NOTIFY)"
    )
    is_async = True
    driver = "asyncpg"
    batch = 10

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        self.queries = self.run(self._open())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def _connect(self) -> Any:
        if self.driver == "asyncpg":
            import asyncpg
            from pgqueuer.db import AsyncpgDriver

            conn = await asyncpg.connect(
                self.url, server_settings={"application_name": self.app_name}
            )
            return conn, AsyncpgDriver(conn)
        import psycopg
        from pgqueuer.db import PsycopgDriver

        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=self.app_name
        )
        return conn, PsycopgDriver(conn)

    async def _open(self) -> Any:
        from pgqueuer.queries import Queries

        self.conn, driver = await self._connect()
        queries = Queries(driver)
        # One process installs; the others of a multi-process run wait for it.
        await driver.execute("SELECT pg_advisory_lock(7074)")
        try:
            if not await queries.has_table(queries.qbe.settings.queue_table):
                await queries.install()
        finally:
            await driver.execute("SELECT pg_advisory_unlock(7074)")
        return queries

    async def aput(self, seq: int) -> None:
        await self.queries.enqueue(ENTRYPOINT, payload(seq).encode())

    async def aput_many(self, seqs: Sequence[int]) -> None:
        n = len(seqs)
        await self.queries.enqueue([ENTRYPOINT] * n, [payload(s).encode() for s in seqs], [0] * n)

    def _manager(self, record: Record) -> Any:
        from pgqueuer.qm import QueueManager

        qm = QueueManager(self.queries)

        @qm.entrypoint(ENTRYPOINT)
        async def handle(job: Any) -> None:
            record(job.payload)

        return qm

    def drain(self, record: Record, stop: Any) -> None:
        from pgqueuer.domain.types import QueueExecutionMode

        async def go() -> None:
            qm = self._manager(record)
            watcher = asyncio.ensure_future(_until(stop, qm.shutdown.set))
            try:
                await qm.run(batch_size=self.batch, mode=QueueExecutionMode.drain)
            finally:
                watcher.cancel()

        self.run(go())

    def wait_for_jobs(self, record: Record, stop: Any, ready: Any) -> None:
        async def go() -> None:
            qm = self._manager(record)
            watcher = asyncio.ensure_future(_until(stop, qm.shutdown.set))
            ready.set()
            try:
                await qm.run(batch_size=self.batch)
            finally:
                watcher.cancel()

        self.run(go())

    def left(self) -> int:
        table = self.queries.qbe.settings.queue_table
        rows = self.run(self.queries.driver.fetch(f"SELECT count(*) AS n FROM {table}"))
        return int(rows[0]["n"])  # finished jobs leave its queue table for its log

    def close(self) -> None:
        try:
            if self.conn is not None:
                self.run(self.conn.close())
        finally:
            self.loop.close()


class PgQueuerBatch1(PgQueuer):
    name = "pgqueuer batch 1"
    note = "pgqueuer's worker with batch_size=1 (asyncpg)"
    batch = 1


class PgQueuerPsycopg(PgQueuer):
    name = "pgqueuer (psycopg)"
    note = "pgqueuer's enqueue through its PsycopgDriver (psycopg 3 AsyncConnection, autocommit)"
    driver = "psycopg"


# -- procrastinate ----------------------------------------------------------------------------


class Procrastinate(PGSystem):
    name = "procrastinate"
    note = (
        "App(PsycopgConnector) with one async task; defer_async() one per call, "
        "batch_defer_async() of 1,000; its worker run_worker_async(concurrency=1, "
        "wait=False) with LISTEN/NOTIFY, jobs kept as succeeded (delete_jobs='never', its default)"
    )
    is_async = True

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        import logging

        import procrastinate

        logging.getLogger("procrastinate").setLevel(logging.ERROR)
        self.loop = asyncio.new_event_loop()
        conninfo = f"{self.url}{'&' if '?' in self.url else '?'}application_name={self.app_name}"
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
        )
        self._record: Record = lambda p: None

        async def bench(p: str) -> None:
            self._record(p)

        self.task = self.app.task(name=ENTRYPOINT, queue=ENTRYPOINT)(bench)
        self.run(self._open())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> None:
        await self.app.open_async()
        async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            await conn.execute("SELECT pg_advisory_lock(7075)")
            try:
                cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
                if not (await cur.fetchone())[0]:
                    await self.app.schema_manager.apply_schema_async()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(7075)")

    async def aput(self, seq: int) -> None:
        await self.task.defer_async(p=payload(seq))

    async def aput_many(self, seqs: Sequence[int]) -> None:
        await self.task.batch_defer_async(*({"p": payload(s)} for s in seqs))

    async def _worker(self, stop: Any, wait: bool, ready: Any = None) -> None:
        worker = asyncio.ensure_future(
            self.app.run_worker_async(
                queues=[ENTRYPOINT], wait=wait, concurrency=1, install_signal_handlers=False
            )
        )
        watcher = asyncio.ensure_future(_until(stop, worker.cancel))
        if ready is not None:
            ready.set()
        try:
            await worker
        except asyncio.CancelledError:
            pass
        finally:
            watcher.cancel()

    def drain(self, record: Record, stop: Any) -> None:
        self._record = record
        self.run(self._worker(stop, wait=False))

    def wait_for_jobs(self, record: Record, stop: Any, ready: Any) -> None:
        self._record = record
        self.run(self._worker(stop, wait=True, ready=ready))

    def left(self) -> int:
        async def count() -> int:
            async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
                cur = await conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                )
                return (await cur.fetchone())[0]

        return self.run(count())

    def close(self) -> None:
        try:
            self.run(self.app.close_async())
        finally:
            self.loop.close()


SYSTEMS: dict[str, type[PGSystem]] = {
    "pq": PQ,
    "pq-getdone": PQGetDone,
    "pq-batch": PQBatch,
    "pq-async": PQAsync,
    "raw": Raw,
    "raw-fused": RawFused,
    "pgqueuer": PgQueuer,
    "pgqueuer-b1": PgQueuerBatch1,
    "pgqueuer-psycopg": PgQueuerPsycopg,
    "procrastinate": Procrastinate,
}
PEERS = ("pgqueuer", "pgqueuer-b1", "pgqueuer-psycopg", "procrastinate")


def missing(key: str) -> str | None:
    """Why a system cannot run here (a package not installed, no AsyncQueue), or None."""
    import importlib.util

    needs = {
        "pgqueuer": ("pgqueuer", "asyncpg"),
        "pgqueuer-b1": ("pgqueuer", "asyncpg"),
        "pgqueuer-psycopg": ("pgqueuer", "psycopg"),
        "procrastinate": ("procrastinate", "psycopg"),
    }.get(key, ("psycopg",))
    absent = []
    for module in needs:
        try:
            if importlib.util.find_spec(module) is None:
                absent.append(module)
        except ImportError:
            absent.append(module)
    if absent:
        return f"{', '.join(absent)} not installed (uv sync --group bench)"
    if key == "pq-async":
        from benchmarks.pq_async import missing as async_missing

        return async_missing()
    return None


def open_system(key: str, spec: dict[str, Any]) -> PGSystem:
    return SYSTEMS[key](spec)
