"""AsyncQueue (issue 11 point 1) where asyncio itself is the subject: the event loop is never
blocked, a waiting get() is woken rather than polling, cancellation puts a job back, leases are
kept alive by a task, signals stop a loop. (Every other queue test runs on AsyncQueue too, via
BOTH_APIS.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from stores import postgres_store

import pq_core
from pq_core import Status


async def opened(target: str, **options: object) -> pq_core.AsyncQueue:
    return await pq_core.open_async(target, **options)


async def test_the_event_loop_never_waits_while_a_thousand_puts_are_made_durable(
    target: str,
) -> None:
    q = await opened(target)  # durability "full": every put waits for an fsync
    late: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        expected = time.monotonic()
        while not stop.is_set():
            expected += 0.010
            await asyncio.sleep(max(expected - time.monotonic(), 0))
            late.append(time.monotonic() - expected)
            expected = max(expected, time.monotonic())

    ticks = asyncio.create_task(ticker())
    ids = [await q.put({"n": n}) for n in range(1000)]
    stop.set()
    await ticks
    assert len(set(ids)) == 1000 and await q.count() == 1000
    assert len(late) > 10 and max(late) < 0.050, f"a tick was {max(late) * 1000:.0f} ms late"
    await q.close()


async def test_a_waiting_get_is_woken_by_a_put_from_another_process(target: str) -> None:
    q = await opened(target)
    await q.put("warm up")
    await q.done(await q.get())
    script = f"import time, pq_core; time.sleep(0.5); pq_core.open({target!r}).put('hello')"
    producer = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    started = time.monotonic()
    item = await q.get(timeout=30)
    took = time.monotonic() - started
    await producer.wait()
    assert item is not None and item.payload == "hello" and took < 20
    await q.close()


async def test_an_idle_wait_on_postgresql_sleeps_instead_of_polling() -> None:
    with postgres_store() as url:
        q = await opened(url)
        claims = []
        real = q.store.claim

        async def counted(*args: object) -> object:
            claims.append(1)
            return await real(*args)

        q.store.claim = counted  # type: ignore[method-assign]
        assert await q.get(timeout=1.5) is None
        assert len(claims) <= 5, f"{len(claims)} claims in an idle 1.5 s wait"
        await q.close()


async def test_a_cancelled_task_puts_its_job_back_without_costing_an_attempt(
    target: str,
) -> None:
    q = await opened(target, max_attempts=1)
    job_id = await q.put("x")
    started = asyncio.Event()

    async def work() -> None:
        async with q.claim() as item:
            assert item.id == job_id
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    item = await q.item(job_id)
    assert (item.status, item.attempts, item.last_error) == (Status.READY, 0, None)
    await q.close()


async def test_an_async_claim_keeps_a_long_jobs_lease_alive(target: str) -> None:
    q = await opened(target, lease=0.6)
    manager_q = pq_core.open(target)
    manager = pq_core.Manager(manager_q)
    job_id = await q.put("long")
    taken = 0
    async with q.claim() as item:
        assert item.id == job_id
        for _ in range(20):  # two seconds, three leases long
            await asyncio.sleep(0.1)
            taken += (await asyncio.to_thread(manager.sweep)).requeued
    assert taken == 0
    assert ((await q.item(job_id)).status, (await q.item(job_id)).attempts) == (Status.DONE, 1)
    manager_q.close()
    await q.close()


async def test_an_exception_in_an_async_for_body_fails_the_job_and_ends_dead(
    target: str,
) -> None:
    q = await opened(target, max_attempts=1)
    job_id = await q.put("poison")

    async def jobs(consumer: pq_core.aio.AsyncConsumer) -> AsyncIterator[pq_core.Item]:
        async for item in consumer:
            yield item

    with pytest.raises(ValueError):
        async with q.consume(timeout=0) as consumer:
            async for _item in jobs(consumer):
                raise ValueError("cannot parse it")
    item = await q.item(job_id)
    assert item.status is Status.DEAD
    assert item.last_error.splitlines()[-1] == "ValueError: cannot parse it"
    await q.close()


def test_stop_signals_end_an_async_loop_after_the_job_in_hand(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.sqlite")
    q = pq_core.open(db)
    ids = q.put_many(["a", "b", "c"])
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, pq_core

        async def main():
            q = await pq_core.open_async({db!r})
            async with q.consume(stop_signals=(signal.SIGTERM,)) as jobs:
                async for item in jobs:
                    print(item.id, flush=True)
                    os.kill(os.getpid(), signal.SIGTERM)
                    await asyncio.sleep(0.2)  # the job in hand finishes all the same
            await q.close()
            print("stopped", flush=True)

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == [str(ids[0]), "stopped"]
    assert [q.item(i).status for i in ids] == [Status.DONE, Status.READY, Status.READY]
    q.close()


async def test_async_consume_acks_each_job_with_the_next_claim(target: str) -> None:
    q = await opened(target)
    ids = await q.put_many(range(20))
    calls = []
    real = q.store.claim

    async def counted(*args: object) -> object:
        calls.append(args[-1])  # the ack fused with this claim
        return await real(*args)

    q.store.claim = counted  # type: ignore[method-assign]
    seen = []
    async with q.consume(timeout=0) as jobs:
        async for item in jobs:
            seen.append(item.id)
    assert seen == ids
    assert sum(1 for ack in calls if ack) == 20  # each acked with the next (last: empty) claim
    assert await q.count("done") == 20
    await q.close()
