"""`uv run --group bench python -m benchmarks.profile WORKLOAD [--durability D] [--ops N]`

Profiles one pq workload in this process with pyinstrument: prints the call tree and writes an
HTML report to benchmarks/results/. WORKLOAD is put, put_many, claim_ack, consume or sweep.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from benchmarks import stores
from benchmarks.systems import open_system, payload

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    p.add_argument("workload", choices=("put", "put_many", "claim_ack", "consume", "sweep"))
    p.add_argument("--durability", choices=("full", "normal"), default="normal")
    p.add_argument("--ops", type=int, default=20_000)
    p.add_argument("--interval", type=float, default=0.0001, help="sampling interval, s")
    args = p.parse_args(argv)
    from pyinstrument import Profiler

    import pq_core

    folder = tempfile.mkdtemp(prefix="pq-profile-")
    if args.workload == "sweep":
        stores.pq_expired(folder, args.ops)
    system = open_system("pq", folder, args.durability)
    q = system.q
    jobs = [payload(i) for i in range(args.ops)]
    if args.workload in ("claim_ack", "consume"):
        system.preload(jobs)

    def work() -> None:
        if args.workload == "put":
            for p in jobs:
                q.put(p)
        elif args.workload == "put_many":
            for i in range(0, len(jobs), 10_000):
                q.put_many(jobs[i : i + 10_000])
        elif args.workload == "claim_ack":
            while (item := q.get()) is not None:
                q.done(item)
        elif args.workload == "consume":
            system.consume(args.ops, time.perf_counter() + 3600)
        else:
            pq_core.Manager(q, interval=5).sweep()

    profiler = Profiler(interval=args.interval)
    start = time.perf_counter()
    profiler.start()
    work()
    profiler.stop()
    seconds = time.perf_counter() - start
    system.close()
    print(
        f"{args.workload} at {args.durability}: {args.ops:,} in {seconds:.2f} s "
        f"({args.ops / seconds:,.0f}/s, profiled)"
    )
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    out = os.path.join(HERE, "results", f"profile-{args.workload}-{args.durability}.html")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(profiler.output_html())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
