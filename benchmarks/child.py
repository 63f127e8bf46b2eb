"""`python -m benchmarks.child SPEC`: one measurement in a process of its own.

SPEC is a JSON object (system, workload, durability, folder, counts); the result is printed as
one JSON line after `RESULT `. `python -m benchmarks.child --build KIND FOLDER N` builds a
template store instead.
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks import stores, workloads


def build(kind: str, folder: str, n: int, extra: int) -> dict[str, float]:
    start = time.perf_counter()
    if kind == "pq-history":
        stores.pq_history(folder, n, extra)
    elif kind == "pq-expired":
        stores.pq_expired(folder, n)
    else:
        stores.HISTORY_BUILDERS[kind.removesuffix("-history")](folder, n)
    return {"seconds": time.perf_counter() - start}


def main(argv: list[str]) -> int:
    if argv[0] == "--build":
        result = build(argv[1], argv[2], int(argv[3]), int(argv[4]))
    else:
        spec = json.loads(argv[0])
        if spec.get("backend") == "postgres":
            from benchmarks import pg_workloads

            result = pg_workloads.run(spec)
        else:
            result = workloads.run(spec)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
