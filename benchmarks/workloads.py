"""One measurement: a system, a workload, a durability, in a fresh store. Runs inside its own
process (see `benchmarks.child`); returns a dict that the parent aggregates.

Every timed loop also stops at `cap` seconds, so a system that degrades (persist-queue with a
long history) costs a bounded time; the rate is then of the operations it did finish.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks import machine, pq_async, stores
from benchmarks.systems import System, open_system, payload, seq_of

Result = dict[str, Any]


def run(spec: dict[str, Any]) -> Result:
    if why := missing(spec["system"]):
        return {"skipped": why}
    folder = spec["folder"]
    if spec.get("template"):
        stores.copy_store(spec["template"], folder)
    # Write back what earlier runs and the copy left dirty, so that no fsync of this run waits
    # for another's data (ext4 commits its journal for every file at once).
    os.sync()
    busy0, own0, wall0 = machine.cpu_times()[0], own_cpu(), time.perf_counter()
    result = WORKLOADS[spec["workload"]](spec)
    wall = time.perf_counter() - wall0
    others = machine.cpu_times()[0] - busy0 - (own_cpu() - own0)
    # Cores that other programs (and the kernel) used meanwhile: this machine is shared.
    result["others_cores"] = max(others, 0.0) / wall
    return result


PEER_MODULES = {"persist-queue": "persistqueue", "litequeue": "litequeue", "huey": "huey"}


def missing(system: str) -> str | None:
    """Why a system cannot run here (its package is not installed, no AsyncQueue), or None."""
    import importlib.util

    if system == "pq-async":
        return pq_async.missing()
    module = PEER_MODULES.get(system)
    try:
        found = module is None or importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    return None if found else f"{system} not installed (uv sync --group bench)"


def own_cpu() -> float:
    """CPU seconds of this process and of the consumer processes it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _open(spec: dict[str, Any], **options: Any) -> System:
    return open_system(spec["system"], spec["folder"], spec["durability"], **options)


def _rate(ops: int, seconds: float, **extra: Any) -> Result:
    return {"value": ops / seconds, "unit": "ops/s", "ops": ops, "seconds": seconds, **extra}


# -- producer -------------------------------------------------------------------------------


def put(spec: dict[str, Any]) -> Result:
    system = _open(spec)
    settings = system.settings()
    ops, clock = spec["ops"], time.perf_counter
    deadline = clock() + spec["cap"]
    start = clock()
    done = 0
    for i in range(ops):
        system.put(payload(i))
        done += 1
        if not i & 63 and clock() > deadline:
            break
    seconds = clock() - start
    system.close()
    return _rate(done, seconds, settings=settings)


def put_many(spec: dict[str, Any]) -> Result:
    system = _open(spec)
    settings = system.settings()
    if system.put_many is None:
        system.close()
        return {"skipped": "no batch put"}
    size, batches = spec["batch"], spec["batches"]
    seconds = 0.0
    for b in range(batches):
        batch = [payload(b * size + i) for i in range(size)]
        start = time.perf_counter()
        system.put_many(batch)
        seconds += time.perf_counter() - start
    system.close()
    return _rate(size * batches, seconds, settings=settings, batch=size, batches=batches)


# -- consumer -------------------------------------------------------------------------------


def claim_ack(spec: dict[str, Any]) -> Result:
    """Claim then ack, one job at a time, by one consumer (the store may hold a history)."""
    system = _open(spec)
    ops = spec["ops"]
    system.preload([payload(i) for i in range(ops)])
    settings = system.settings()
    clock = time.perf_counter
    deadline = clock() + spec["cap"]
    claim, ack = system.claim, system.ack
    done = 0
    start = clock()
    while done < ops:
        got = claim()
        if got is None:
            break
        ack(got[0])
        done += 1
        if not done & 15 and clock() > deadline:
            break
    seconds = clock() - start
    system.close()
    return _rate(done, seconds, settings=settings, capped=done < ops)


def consume(spec: dict[str, Any]) -> Result:
    """pq's consume() loop (the raw limit: the ack and the next claim in one transaction)."""
    system = _open(spec)
    if not hasattr(system, "consume"):
        system.close()
        return {"skipped": "no fused consume loop; its claim+ack loop is its consumer"}
    ops = spec["ops"]
    system.preload([payload(i) for i in range(ops)])
    settings = system.settings()
    start = time.perf_counter()
    done = system.consume(ops, start + spec["cap"])
    seconds = time.perf_counter() - start
    system.close()
    return _rate(done, seconds, settings=settings, capped=done < ops)


def claim_batch(spec: dict[str, Any]) -> Result:
    """Claim `size` jobs in one call, ack them in one call (pq: get_many + done_many)."""
    system = _open(spec)
    ops, size = spec["ops"], spec["size"]
    system.preload([payload(i) for i in range(ops)])
    settings = system.settings()
    clock = time.perf_counter
    deadline = clock() + spec["cap"]
    claim_many, ack_many = system.claim_many, system.ack_many
    done = 0
    start = clock()
    while done < ops:
        got = claim_many(size)
        if not got:
            break
        ack_many([g[0] for g in got])
        done += len(got)
        if clock() > deadline:
            break
    seconds = clock() - start
    system.close()
    return _rate(done, seconds, settings=settings, capped=done < ops, size=size)


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def consumer_process(spec: dict[str, Any], barrier: Any, out: str) -> None:
    """One of several consumer processes: claim+ack until nothing is ready."""
    # persist-queue would otherwise put every job another process holds back to ready on open.
    options = {"auto_resume": False} if spec["system"] == "persist-queue" else {}
    system = _open(spec, **options)
    claim, ack, clock = system.claim, system.ack, time.perf_counter
    seqs: list[int] = []
    latency: list[float] = []
    ack_latency: list[float] = []
    errors: list[str] = []
    barrier.wait()
    first = time.monotonic()
    while len(errors) < 200:
        t = clock()
        try:
            got = claim()
        except Exception as exc:  # counted: an error that reached the caller
            errors.append(f"claim: {type(exc).__name__}: {exc}")
            continue
        latency.append(clock() - t)  # every claim, the last (empty) one too
        if got is None:
            break
        seqs.append(seq_of(got[1]))
        t = clock()
        for _ in range(50):
            try:
                ack(got[0])
                break
            except Exception as exc:
                errors.append(f"ack: {type(exc).__name__}: {exc}")
        ack_latency.append(clock() - t)
    last = time.monotonic()
    system.close()
    with open(out, "w") as f:
        report = {"seqs": seqs, "latency": latency, "ack_latency": ack_latency, "errors": errors}
        json.dump({**report, "t": [first, last]}, f)


def consumers(spec: dict[str, Any]) -> Result:
    """`consumers` processes drain `ops` preloaded jobs at once; count duplicates and losses."""
    ops, k = spec["ops"], spec["consumers"]
    system = _open(spec)
    system.preload([payload(i) for i in range(ops)])
    settings = system.settings()
    system.close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(k)
    outs = [os.path.join(spec["folder"], f"consumer-{i}.json") for i in range(k)]
    procs = [ctx.Process(target=consumer_process, args=(spec, barrier, o)) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=spec["cap"] * 4 + 60)
        if p.is_alive():
            p.kill()
    reports = []
    for o in outs:
        if os.path.exists(o):
            with open(o) as f:
                reports.append(json.load(f))
    delivered = Counter(s for r in reports for s in r["seqs"])
    # What the consumers left behind (not lost: still in the store), taken by one last drain.
    system = _open(spec, **({"auto_resume": False} if spec["system"] == "persist-queue" else {}))
    stranded = set()
    while (got := system.claim()) is not None:
        stranded.add(seq_of(got[1]))
        system.ack(got[0])
    system.close()
    unique = len(delivered)
    latency = sorted(x for r in reports for x in r["latency"])
    ack_latency = sorted(x for r in reports for x in r["ack_latency"])
    errors = [e for r in reports for e in r["errors"]]
    span = max(r["t"][1] for r in reports) - min(r["t"][0] for r in reports) if reports else 0
    return {
        **_rate(unique, span or float("nan")),
        "settings": settings,
        "consumers": k,
        "finished": len(reports),
        "deliveries": sum(delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values()),
        "duplicated_jobs": sum(1 for n in delivered.values() if n > 1),
        "stranded": len(stranded - set(delivered)),
        "lost": len(set(range(ops)) - set(delivered) - stranded),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "p50_ms": _percentile(latency, 50) * 1000,
        "p99_ms": _percentile(latency, 99) * 1000,
        "ack_p50_ms": _percentile(ack_latency, 50) * 1000,
        "ack_p99_ms": _percentile(ack_latency, 99) * 1000,
        "per_process": [len(r["seqs"]) for r in reports],
        "busiest_share": max((len(r["seqs"]) for r in reports), default=0) / max(unique, 1),
        "process_seconds": [round(r["t"][1] - r["t"][0], 3) for r in reports],
    }


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]


# -- manager and operator (pq, with raw SQL as the reference) --------------------------------


def sweep(spec: dict[str, Any]) -> Result:
    """One manager sweep over `ops` in-progress jobs whose leases ran out (template store)."""
    ops = spec["ops"]
    if spec["system"] == "raw":
        return _raw_sweep(spec)
    import pq_core

    system = _open(spec)
    settings = system.settings()
    manager = pq_core.Manager(system.q, interval=5)
    start = time.perf_counter()
    report = manager.sweep()
    seconds = time.perf_counter() - start
    taken = report.requeued + report.dead
    system.close()
    if taken != ops:
        raise RuntimeError(f"sweep took back {taken} of {ops} expired leases")
    return {"value": seconds, "unit": "s", "ops": taken, "settings": settings}


def _raw_sweep(spec: dict[str, Any]) -> Result:
    system = _open(spec)
    conn, ops = system.conn, spec["ops"]
    past = time.time() - 3600
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO jobs (payload, status, lease_until) VALUES (?, 1, ?)",
        ((payload(i), past) for i in range(ops)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    settings = system.settings()
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    taken = conn.execute(
        "UPDATE jobs SET status = 0, lease_until = NULL WHERE status = 1 AND lease_until <= ?",
        (time.time(),),
    ).rowcount
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    system.close()
    return {"value": seconds, "unit": "s", "ops": taken, "settings": settings}


def _latency(call: Callable[[], Any], calls: int) -> tuple[float, float, float]:
    """(first, median, max) of `calls` calls, in ms."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times[0], statistics.median(times), max(times)


def _operator_store(spec: dict[str, Any]) -> System:
    system = _open(spec)
    system.preload([payload(i) for i in range(spec["ready"])])  # some ready work, as in life
    return system


def stats(spec: dict[str, Any]) -> Result:
    """q.stats() on the big store; the reference is a raw count(*) … GROUP BY status."""
    system = _operator_store(spec)
    settings = system.settings()
    q = system.q
    first, median, worst = _latency(q.stats, spec["calls"])
    jobs = sum(sum(s.counts.values()) for s in q.stats().queues.values())
    system.close()
    conn = sqlite3.connect(system.path)
    scan = _latency(
        lambda: conn.execute("SELECT status, count(*) FROM pq_jobs GROUP BY status").fetchall(), 3
    )
    conn.close()
    return {
        "value": median,
        "unit": "ms",
        "first_ms": first,
        "max_ms": worst,
        "jobs": jobs,
        "raw_count_scan_ms": scan[1],
        "settings": settings,
    }


def items(spec: dict[str, Any]) -> Result:
    """One filtered page, q.items(status="dead", limit=100), on the big store."""
    system = _operator_store(spec)
    settings = system.settings()
    q = system.q
    first, median, worst = _latency(lambda: q.items(status="dead", limit=100), spec["calls"])
    page = len(q.items(status="dead", limit=100))
    system.close()
    return {
        "value": median,
        "unit": "ms",
        "first_ms": first,
        "max_ms": worst,
        "page": page,
        "settings": settings,
    }


WORKLOADS: dict[str, Callable[[dict[str, Any]], Result]] = {
    "put": put,
    "put_many": put_many,
    "claim_ack": claim_ack,
    "consume": consume,
    "claim_batch": claim_batch,
    "consumers": consumers,
    "claim_history": claim_ack,
    "sweep": sweep,
    "stats": stats,
    "items": items,
}
