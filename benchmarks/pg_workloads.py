"""One PostgreSQL measurement: a system, a workload, in a database of its own. Runs in a
process of its own (`benchmarks.child`); consumers run in further processes it starts.

- put: `ops` jobs put one per call. put_many: `batches` calls of `batch` jobs.
- consumers: `ops` preloaded jobs drained by `consumers` processes; the rate is unique jobs
  from the first job any consumer received to the last (so worker start-up, schema checks
  and LISTEN set-up are not counted, for any system); duplicates, losses and jobs left
  behind are counted from the sequence numbers.
- latency: one consumer waits; the producer puts a job every 15–25 ms; the latency of a job
  is from just before its put call to its consumer having it (CLOCK_MONOTONIC, shared by
  every process on the machine). The first `warmup` jobs are not counted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
import time
from collections import Counter
from typing import Any

from benchmarks import machine
from benchmarks.pg_systems import PGSystem, missing, open_system
from benchmarks.systems import seq_of
from benchmarks.workloads import own_cpu

Result = dict[str, Any]


def run(spec: dict[str, Any]) -> Result:
    why = missing(spec["system"])
    if why:
        return {"skipped": why}
    busy0, own0, server0 = machine.cpu_times()[0], own_cpu(), machine.postgres_cpu()
    wall0 = time.perf_counter()
    result = WORKLOADS[spec["workload"]](spec)
    wall = time.perf_counter() - wall0
    server = machine.postgres_cpu() - server0  # backends that ended meanwhile are not seen
    others = machine.cpu_times()[0] - busy0 - (own_cpu() - own0) - server
    # The server's cores (everyone's backends) and what other programs used meanwhile.
    result["server_cores"] = max(server, 0.0) / wall
    result["others_cores"] = max(others, 0.0) / wall
    return result


def _rate(ops: int, seconds: float, **extra: Any) -> Result:
    return {"value": ops / seconds, "unit": "ops/s", "ops": ops, "seconds": seconds, **extra}


def _open(spec: dict[str, Any], role: str) -> PGSystem:
    return open_system(spec["system"], {**spec, "app_name": f"{spec['app_name']}-{role}"})


# -- producers --------------------------------------------------------------------------------


def put(spec: dict[str, Any]) -> Result:
    system = _open(spec, "put")
    ops, cap = spec["ops"], spec["cap"]
    try:
        if system.is_async:
            done, seconds = system.run(_aput_loop(system, ops, cap))
        else:
            done, seconds = _put_loop(system, ops, cap)
    finally:
        system.close()
    return _rate(done, seconds, capped=done < ops)


def _put_loop(system: PGSystem, ops: int, cap: float) -> tuple[int, float]:
    clock, put_one = time.perf_counter, system.put
    start = clock()
    deadline, done = start + cap, 0
    for i in range(ops):
        put_one(i)
        done += 1
        if not i & 63 and clock() > deadline:
            break
    return done, clock() - start


async def _aput_loop(system: PGSystem, ops: int, cap: float) -> tuple[int, float]:
    clock, put_one = time.perf_counter, system.aput
    start = clock()
    deadline, done = start + cap, 0
    for i in range(ops):
        await put_one(i)
        done += 1
        if not i & 63 and clock() > deadline:
            break
    return done, clock() - start


def put_many(spec: dict[str, Any]) -> Result:
    system = _open(spec, "put-many")
    size, batches = spec["batch"], spec["batches"]
    seconds = 0.0
    try:
        for b in range(batches):
            seqs = range(b * size, (b + 1) * size)
            start = time.perf_counter()
            if system.is_async:
                system.run(system.aput_many(seqs))
            else:
                system.put_many(seqs)
            seconds += time.perf_counter() - start
    finally:
        system.close()
    return _rate(size * batches, seconds, batch=size, batches=batches)


# -- consumers --------------------------------------------------------------------------------


class Recorder:
    """What one consumer process received, and the shared count that tells every process when
    all jobs were seen (or the time cap passed)."""

    def __init__(self, total: int, counter: Any, stop: Any, cap: float) -> None:
        self.total, self.counter, self.stop = total, counter, stop
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.deadline = time.monotonic() + cap
        self.capped = False

    def __call__(self, data: Any) -> None:
        now = time.monotonic()
        self.seqs.append(seq_of(data))
        self.times.append(now)
        with self.counter.get_lock():
            self.counter.value += 1
            seen = self.counter.value
        if seen >= self.total or now > self.deadline:
            self.capped = seen < self.total
            self.stop.set()


def consumer_process(
    spec: dict[str, Any], index: int, barrier: Any, counter: Any, stop: Any, out: str
) -> None:
    error = None
    recorder = Recorder(spec["ops"], counter, stop, spec["cap"])
    try:
        system = _open(spec, f"consumer{index}")
    except Exception as exc:  # reported, and the other processes are not left waiting
        error = f"open: {type(exc).__name__}: {exc}"
        barrier.abort()
    else:
        try:
            barrier.wait()
            timer = threading.Timer(spec["cap"], stop.set)  # stops a system that stalls
            timer.daemon = True
            timer.start()
            recorder.deadline = time.monotonic() + spec["cap"]
            system.drain(recorder, stop)
            timer.cancel()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                system.close()
            except Exception as exc:
                error = error or f"close: {type(exc).__name__}: {exc}"
    with open(out, "w") as f:
        json.dump(
            {
                "seqs": recorder.seqs,
                "times": recorder.times,
                "capped": recorder.capped,
                "error": error,
            },
            f,
        )


def consumers(spec: dict[str, Any]) -> Result:
    ops, k = spec["ops"], spec["consumers"]
    system = _open(spec, "preload")
    try:
        system.preload(ops)
    finally:
        system.close()
    ctx = multiprocessing.get_context("spawn")
    barrier, counter, stop = ctx.Barrier(k), ctx.Value("q", 0), ctx.Event()
    outs = [os.path.join(spec["folder"], f"consumer-{i}.json") for i in range(k)]
    procs = [
        ctx.Process(target=consumer_process, args=(spec, i, barrier, counter, stop, o))
        for i, o in enumerate(outs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=spec["cap"] * 2 + 60)
        if p.is_alive():
            p.kill()
            p.join()
    reports = []
    for o in outs:
        if os.path.exists(o):
            with open(o) as f:
                reports.append(json.load(f))
    errors = [r["error"] for r in reports if r["error"]]
    errors += ["a consumer process ended without a report"] * (k - len(reports))
    delivered = Counter(s for r in reports for s in r["seqs"])
    times = sorted(t for r in reports for t in r["times"])
    system = _open(spec, "check")
    try:
        left = system.left()
    finally:
        system.close()
    unique = len(delivered)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    per_process = [len(r["seqs"]) for r in reports]
    if errors and not unique:
        return {"error": "; ".join(sorted(set(errors))[:3])}
    return {
        **_rate(max(unique - 1, 0), span),
        "consumers": k,
        "finished": len(reports),
        "deliveries": sum(delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values()),
        "duplicated_jobs": sum(1 for n in delivered.values() if n > 1),
        "stranded": left,
        "lost": max(ops - unique - left, 0),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "capped": any(r["capped"] for r in reports) or unique < ops,
        "per_process": per_process,
        "busiest_share": max(per_process, default=0) / max(unique, 1),
    }


# -- latency: put → a waiting consumer ---------------------------------------------------------


def latency_consumer(spec: dict[str, Any], ready: Any, counter: Any, stop: Any, out: str) -> None:
    recorder = Recorder(2**62, counter, stop, 3600)
    error = None
    try:
        system = _open(spec, "waiter")
        try:
            system.wait_for_jobs(recorder, stop, ready)
        finally:
            system.close()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        ready.set()
    with open(out, "w") as f:
        json.dump({"seqs": recorder.seqs, "times": recorder.times, "error": error}, f)


def latency(spec: dict[str, Any]) -> Result:
    samples, warmup = spec["samples"], spec["warmup"]
    total = samples + warmup
    ctx = multiprocessing.get_context("spawn")
    ready, counter, stop = ctx.Event(), ctx.Value("q", 0), ctx.Event()
    out = os.path.join(spec["folder"], "waiter.json")
    system = _open(spec, "producer")  # installs the schema before the consumer starts
    consumer = ctx.Process(target=latency_consumer, args=(spec, ready, counter, stop, out))
    consumer.start()
    put_at: dict[int, float] = {}
    try:
        ready.wait(60)
        time.sleep(0.5)  # the consumer is in its wait (LISTEN) by now
        gaps = random.Random(7)
        if system.is_async:
            system.run(_aproduce(system, total, put_at, gaps))
        else:
            _produce(system, total, put_at, gaps)
        deadline = time.monotonic() + 10
        while counter.value < total and time.monotonic() < deadline and consumer.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        consumer.join(timeout=30)
        if consumer.is_alive():
            consumer.kill()
            consumer.join()
        system.close()
    if not os.path.exists(out):
        return {"error": "the waiting consumer ended without a report"}
    with open(out) as f:
        report = json.load(f)
    got: dict[int, float] = {}
    for seq, t in zip(report["seqs"], report["times"], strict=True):
        got.setdefault(seq, t)
    delays = sorted(
        (got[s] - put_at[s]) * 1000 for s in range(warmup, total) if s in got and s in put_at
    )
    if not delays:
        return {"error": report["error"] or "no job reached the waiting consumer"}
    delivered = Counter(report["seqs"])
    return {
        "value": _percentile(delays, 50),
        "unit": "ms",
        "p50_ms": _percentile(delays, 50),
        "p95_ms": _percentile(delays, 95),
        "max_ms": delays[-1],
        "samples": len(delays),
        "duplicates": sum(n - 1 for n in delivered.values()),
        "lost": total - len(got),
        "errors": 1 if report["error"] else 0,
        "error_samples": [report["error"]] if report["error"] else [],
    }


def _produce(system: PGSystem, total: int, put_at: dict[int, float], gaps: random.Random) -> None:
    for seq in range(total):
        put_at[seq] = time.monotonic()
        system.put(seq)
        time.sleep(gaps.uniform(0.015, 0.025))


async def _aproduce(
    system: PGSystem, total: int, put_at: dict[int, float], gaps: random.Random
) -> None:
    import asyncio

    for seq in range(total):
        put_at[seq] = time.monotonic()
        await system.aput(seq)
        await asyncio.sleep(gaps.uniform(0.015, 0.025))


def _percentile(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]


WORKLOADS = {"put": put, "put_many": put_many, "consumers": consumers, "latency": latency}
