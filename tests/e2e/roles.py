"""Producer, consumer, manager and holder processes for the end-to-end tests.

Run as `python roles.py ROLE DB [options]`. Each process keeps its own record of what it was
told: one line per job id, appended and fsync'd before it goes on, so the record survives a
SIGKILL at any instruction (a line cut short by the kill has no newline and is not counted).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import pq_core


class Record:
    """An append-only file of job ids that survives the process being killed."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, job_id: int) -> None:
        os.write(self.fd, b"%d\n" % job_id)
        os.fsync(self.fd)


def read_ids(path: Path) -> list[int]:
    """The ids of a record; a last line without its newline was cut short by a kill."""
    text = path.read_bytes().decode()
    lines = text.split("\n")
    return [int(line) for line in lines[:-1]]  # after the last "\n" comes "" or a torn line


def produce(args: argparse.Namespace) -> None:
    """Put jobs until killed, or `count` of them; the id goes on record once put returned."""
    q = pq_core.open(args.db, durability=args.durability)
    put = Record(args.log)
    n = 0
    while args.count is None or n < args.count:
        if n % 7 == 6:
            for job_id in q.put_many([{"by": os.getpid(), "n": n, "part": k} for k in range(3)]):
                put.add(job_id)
        else:
            put.add(q.put({"by": os.getpid(), "n": n}))
        n += 1
        if args.pause:
            time.sleep(args.pause)


def consume(args: argparse.Namespace) -> None:
    """Process jobs until idle for `idle` seconds, killed, or SIGTERM. `work` records a job as it
    is processed (before its ack); `log` records it once its done has returned."""
    q = pq_core.open(args.db, durability=args.durability, lease=args.lease)
    work = Record(args.work)
    done = Record(args.log)
    stopping: list[bool] = []

    def stop(*_: object) -> None:
        stopping.append(True)
        q.stop()

    signal.signal(signal.SIGTERM, stop)
    if args.mode == "consume":
        previous = None
        for item in q.consume(timeout=args.idle):
            if previous is not None:
                done.add(previous)  # acked in the same transaction that claimed `item`
            work.add(item.id)
            time.sleep(args.work_seconds)
            previous = item.id
        if previous is not None:
            done.add(previous)  # acked before consume() returned
        return
    idle_since = time.monotonic()
    while not stopping and (args.idle is None or time.monotonic() - idle_since < args.idle):
        item = q.get(timeout=0.2)
        if item is None:
            continue
        work.add(item.id)
        time.sleep(args.work_seconds)
        q.done(item)
        done.add(item.id)
        idle_since = time.monotonic()


def manage(args: argparse.Namespace) -> None:
    q = pq_core.open(args.db, durability=args.durability)
    pq_core.Manager(q, interval=args.interval).run()


def hold(args: argparse.Namespace) -> None:
    """Claim one job under a one-hour lease, record it, and sit on it until killed."""
    q = pq_core.open(args.db)
    item = q.get(timeout=60, lease=3600)
    if item is None:
        raise SystemExit("nothing to hold")
    Record(args.log).add(item.id)
    time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["producer", "consumer", "manager", "holder"])
    parser.add_argument("db")
    parser.add_argument("--log", help="record of puts (producer) or dones (consumer)")
    parser.add_argument("--work", help="record of jobs a consumer started processing")
    parser.add_argument("--durability", default="full")
    parser.add_argument("--count", type=int)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--mode", choices=["consume", "claim"], default="consume")
    parser.add_argument("--idle", type=float, help="stop after this long without a job")
    parser.add_argument("--lease", type=float, default=300)
    parser.add_argument("--work-seconds", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    {"producer": produce, "consumer": consume, "manager": manage, "holder": hold}[args.role](args)


if __name__ == "__main__":
    main()
