"""`uv run --group bench python -m benchmarks [--quick] [--rounds N] …`

Runs issue 4's comparison: pq against persist-queue, litequeue, huey and raw sqlite3, each
system × workload × round in a fresh store and a process of its own, rounds alternated, at
synchronous=FULL and NORMAL (WAL everywhere). Prints medians (min–max) and the targets, and
writes JSON and markdown to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks import machine, report
from benchmarks.systems import SYSTEMS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALL = ("pq", "raw", "persist-queue", "litequeue", "huey")
QUIET_CORES = 0.25  # before each measurement, wait while others use more than this

FULL = {
    "rounds": 5,
    "ops": 5000,  # per fsync-bound workload (put, claim+ack, consume, consumer processes)
    "batch": 10_000,
    "batches": 3,
    "history": 1_000_000,  # done jobs under the history claim, and the stats()/items() store
    "dead": 10_000,  # dead jobs in that store, for the filtered items() page
    "expired": 100_000,
    "ready": 10_000,  # ready jobs added to the big store before stats()/items()
    "calls": 20,
    "cap": 20.0,  # seconds: a timed loop stops there even if its count is not reached
    "history_cap": 10.0,
}
QUICK = {
    **FULL,
    "rounds": 1,
    "ops": 1000,
    "batches": 1,
    "history": 200_000,
    "ready": 2000,
    "calls": 10,
    "cap": 5.0,
    "history_cap": 3.0,
}

# (row, workload, systems, template kind or None, extra spec)
PLAN: list[tuple[str, str, tuple[str, ...], str | None, dict[str, Any]]] = [
    ("put", "put", ALL, None, {}),
    ("put_many", "put_many", ("pq", "raw", "litequeue"), None, {}),
    ("claim_ack", "claim_ack", ALL, None, {}),
    ("consume", "consume", ("pq", "raw"), None, {}),
    ("consumers4", "consumers", ALL, None, {"consumers": 4}),
    ("consumers8", "consumers", ALL, None, {"consumers": 8}),
    ("claim_history", "claim_history", ("pq", "raw", "litequeue", "persist-queue"), "history", {}),
    ("sweep", "sweep", ("pq", "raw"), "expired", {}),
    ("stats", "stats", ("pq",), "pq-history", {}),
    ("items", "items", ("pq",), "pq-history", {}),
]
NOT_RUN = {
    "put_many": "persist-queue and huey have no batch put",
    "consume": "peers have no fused consume loop: their claim+ack loop is their consumer",
    "claim_history": "huey deletes a task when it is dequeued, so it keeps no done jobs",
    "sweep": "peers have no manager; raw is one UPDATE of the expired rows in one transaction",
    "stats": "pq only (the raw count(*) … GROUP BY status scan is given as a reference)",
    "items": "pq only",
}


LEGEND = (
    "Multi-process columns: duplicate deliveries are extra deliveries summed over the rounds"
    " (in brackets, how many jobs were delivered more than once); lost = never delivered and"
    " not in the store; left ready = still ready when every consumer had stopped; errors that"
    " reached the caller (e.g. database is locked); claim and ack latency percentiles over"
    " every call of every process (median of the rounds); busiest process = the share of the"
    " jobs that one process handled."
)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[2])
    p.add_argument("--quick", action="store_true", help="one round, small counts (~1-2 minutes)")
    p.add_argument("--rounds", type=int, help="rounds per system × workload (default 5)")
    p.add_argument("--ops", type=int, help="operations per fsync-bound workload")
    p.add_argument("--history", type=int, help="done jobs in the big store (default 1,000,000)")
    p.add_argument("--durability", choices=("full", "normal", "both"), default="both")
    p.add_argument("--systems", help=f"comma-separated subset of: {', '.join(ALL)}")
    p.add_argument(
        "--workloads", help=f"comma-separated subset of: {', '.join(r[0] for r in PLAN)}"
    )
    p.add_argument("--dir", help="where the stores go (default: the system's temp folder)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder")
    p.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds in all to wait for other programs to leave the cores idle "
        "(default 120, --quick 30)",
    )
    return p.parse_args(argv)


def configure(args: argparse.Namespace) -> dict[str, Any]:
    config = dict(QUICK if args.quick else FULL)
    for key in ("rounds", "ops", "history"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config["quick"] = args.quick
    config["durabilities"] = ["full", "normal"] if args.durability == "both" else [args.durability]
    config["systems"] = _subset(args.systems, ALL, "system")
    config["workloads"] = _subset(args.workloads, [r[0] for r in PLAN], "workload")
    return config


def _subset(text: str | None, known: Any, what: str) -> list[str]:
    if not text:
        return list(known)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        sys.exit(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return wanted


def _child(argv: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.child", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _templates(config: dict[str, Any], base: str, log: Any) -> dict[str, str]:
    """Build each big store once; every round copies it."""
    needed: list[tuple[str, int, int]] = []
    rows = {r[0]: r for r in PLAN}
    chosen = [rows[w] for w in config["workloads"]]
    n, dead = config["history"], config["dead"]
    for _row, _, systems, kind, _ in chosen:
        for s in systems:
            if s not in config["systems"]:
                continue
            if kind == "history":
                needed.append((f"{s}-history", n, dead))
            elif kind == "expired" and s == "pq":
                needed.append(("pq-expired", config["expired"], 0))
            elif kind == "pq-history":
                needed.append(("pq-history", n, dead))
    out: dict[str, str] = {}
    for kind, count, extra in dict.fromkeys(needed):
        if kind in out:
            continue
        folder = os.path.join(base, "templates", kind)
        result = _child(["--build", kind, folder, str(count), str(extra)], timeout=900)
        if "error" in result:
            raise SystemExit(f"building the {kind} store failed: {result['error']}")
        log(f"built {kind} ({count:,} rows) in {result['seconds']:.1f} s")
        out[kind] = folder
    return out


def run(config: dict[str, Any], base: str, log: Any) -> list[dict[str, Any]]:
    templates = _templates(config, base, log)
    runs: list[dict[str, Any]] = []
    plan = [r for r in PLAN if r[0] in config["workloads"]]
    for rnd in range(config["rounds"]):
        for durability in config["durabilities"]:
            for row, workload, systems, kind, extra in plan:
                chosen = [s for s in systems if s in config["systems"]]
                if not chosen:
                    continue
                shift = rnd % len(chosen)
                chosen = chosen[shift:] + chosen[:shift]  # rounds alternate who goes first
                shown = []
                for system in chosen:
                    folder = os.path.join(base, f"r{rnd}-{durability}-{row}-{system}")
                    spec = _spec(config, row, workload, system, durability, folder, extra)
                    template = _template_for(kind, system, templates)
                    if template:
                        spec["template"] = template
                    waited = _quiet(config)
                    result = _child([json.dumps(spec)], timeout=spec["cap"] * 6 + 180)
                    result["waited_for_quiet"] = waited
                    if not config.get("keep"):
                        shutil.rmtree(folder, ignore_errors=True)
                    result.update(system=system, workload=workload, durability=durability)
                    result["round"] = rnd
                    runs.append(result)
                    shown.append(f"{system} {_short(result)}")
                log(
                    f"round {rnd + 1}/{config['rounds']} {durability:<6} {row:<13} "
                    + "  ".join(shown)
                )
    return runs


def _quiet(config: dict[str, Any]) -> float:
    """Wait (within the run's budget) until other programs leave the cores alone."""
    start = time.perf_counter()
    while config["quiet_budget"] > 0:
        if machine.busy_cores(0.3) < QUIET_CORES:
            break
        time.sleep(0.7)
        config["quiet_budget"] -= 1.0
    return time.perf_counter() - start


def _spec(
    config: dict[str, Any],
    row: str,
    workload: str,
    system: str,
    durability: str,
    folder: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    spec = {
        "system": system,
        "workload": workload,
        "durability": durability,
        "folder": folder,
        "ops": config["ops"],
        "cap": config["history_cap"] if row == "claim_history" else config["cap"],
        "batch": config["batch"],
        "batches": config["batches"],
        "ready": config["ready"],
        "calls": config["calls"],
        **extra,
    }
    if workload == "sweep":
        spec["ops"] = config["expired"]
    return spec


def _template_for(kind: str | None, system: str, templates: dict[str, str]) -> str | None:
    if kind == "history":
        return templates.get(f"{system}-history")
    if kind == "expired":
        return templates.get("pq-expired") if system == "pq" else None
    if kind:
        return templates.get(kind)
    return None


def _short(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR"
    if "skipped" in result:
        return "skipped"
    value, unit = result["value"], result["unit"]
    text = f"{value:,.0f}/s" if unit == "ops/s" else f"{value:.3g} {unit}"
    if result.get("duplicates"):
        text += f" ({result['duplicates']} dup)"
    if result.get("capped"):
        text += " (capped)"
    return text


def durability_check(runs: list[dict[str, Any]]) -> list[str]:
    """Every system ran with the synchronous setting asked for, in WAL mode."""
    wrong = set()
    for r in runs:
        s = r.get("settings")
        if s and (s["synchronous"] != r["durability"].upper() or s["journal"] != "wal"):
            wrong.add(f"{r['system']} {r['durability']}: {s['synchronous']}, {s['journal']}")
    return sorted(wrong)


def render(
    config: dict[str, Any],
    info: dict[str, Any],
    summary: dict[str, Any],
    found: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    markdown: bool,
) -> str:
    table = report.markdown_table if markdown else report.text_table
    out = []
    for durability in config["durabilities"]:
        rounds = config["rounds"]
        title = f"synchronous={durability.upper()}, WAL: median (min–max) of {rounds} round(s)"
        out += [f"### {title}" if markdown else title.upper(), ""]
        out += [table(report.table_rows(summary, durability, config)), ""]
        out += [table(report.consumer_rows(summary, durability)), ""]
    out += [LEGEND, ""]
    out += ["### Targets (issue 4)" if markdown else "TARGETS (issue 4)", ""]
    out += [table(report.target_rows(found)), ""]
    for d, row in (("normal", "claim_ack"), ("full", "claim_ack"), ("full", "consume")):
        shown = report.peer_ratios(summary, d, row)
        if shown:
            what = "claim+ack" if row == "claim_ack" else "consume()"
            out.append(f"pq {what} at {d.upper()} against each peer's claim+ack: {shown}.")
    stats_cell = summary.get("full", {}).get("stats", {}).get("pq")
    if stats_cell:
        out.append(
            f"Reference: a raw `SELECT status, count(*) … GROUP BY status` over the same "
            f"{config['history']:,}-job store takes {stats_cell['raw_count_scan_ms']:.0f} ms."
        )
    capped = [
        f"{r['system']} {r['workload']} {r['durability']} round {r['round'] + 1}: "
        f"{r['ops']:,} ops in {r['seconds']:.1f} s"
        for r in runs
        if r.get("capped")
    ]
    if capped:
        out.append("† stopped at the time cap before its count: " + "; ".join(capped) + ".")
    others = [r["others_cores"] for r in runs if "others_cores" in r]
    if others:
        busy = sum(1 for o in others if o > QUIET_CORES)
        waited = sum(r.get("waited_for_quiet", 0) for r in runs)
        out.append(
            f"Other programs (and the kernel) used more than {QUIET_CORES} of a core during "
            f"{busy} of {len(others)} measurements (median {statistics.median(others):.2f}, "
            f"max {max(others):.2f} cores); {waited:.0f} s were spent waiting for quiet cores."
        )
    errors = [
        f"{r['system']} {r['workload']} {r['durability']}: {r['error']}"
        for r in runs
        if "error" in r
    ]
    if errors:
        out.append("Failed runs: " + "; ".join(errors))
    return "\n".join(out)


def header(
    config: dict[str, Any], info: dict[str, Any], argv: list[str], seconds: float, checks: list[str]
) -> str:
    mode = "quick" if config["quick"] else "full"
    lines = [
        f"Command: `{' '.join(['uv run --group bench python -m benchmarks', *argv])}`",
        f"Run: {mode}, {config['rounds']} round(s), {seconds / 60:.1f} minutes, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"disk {info['disk']}, {info['os']}",
        f"Python {info['python']}, SQLite {info['sqlite']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"Payload: 100-byte str per job. Counts: {config['ops']:,} jobs per put / claim+ack / "
        f"consume / multi-process run; put_many {config['batches']} × {config['batch']:,}; "
        f"{config['history']:,} done jobs (+{config['dead']:,} dead, +{config['ready']:,} ready "
        f"for stats/items); {config['expired']:,} expired leases; time cap {config['cap']:g} s "
        f"per loop ({config['history_cap']:g} s with the history).",
        "Durability: every system in WAL mode at the synchronous level of the table; "
        + ("all read back as asked." if not checks else "MISMATCH: " + "; ".join(checks)),
    ]
    return "\n".join(lines)


def notes() -> str:
    lines = ["How each system was driven:"]
    lines += [f"- {cls.name}: {cls.note}" for cls in SYSTEMS.values()]
    lines += [f"- not run for {row}: {why}" for row, why in NOT_RUN.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    config = configure(args)
    config["keep"] = args.keep
    config["quiet_budget"] = args.quiet_wait
    if args.quiet_wait is None:
        config["quiet_budget"] = 30.0 if args.quick else 120.0
    try:
        import huey  # noqa: F401
        import litequeue  # noqa: F401
        import persistqueue  # noqa: F401
    except ImportError as exc:
        sys.exit(
            f"{exc.name} is missing: run `uv sync --group bench` and use `uv run --group bench`"
        )
    base = tempfile.mkdtemp(prefix="pq-bench-", dir=args.dir)
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    info = machine.describe(base)
    log(f"stores in {base}; {info['cores']} cores, disk {info['disk']}, SQLite {info['sqlite']}")
    try:
        runs = run(config, base, log)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    seconds = time.perf_counter() - started
    summary = report.summarise(runs)
    found = report.targets(summary)
    checks = durability_check(runs)
    head = header(config, info, argv, seconds, checks)
    print()
    print(head)
    print()
    print(render(config, info, summary, found, runs, markdown=False))

    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    data = {
        "config": config,
        "machine": info,
        "seconds": seconds,
        "summary": summary,
        "targets": found,
        "runs": runs,
        "argv": argv,
    }
    md = "\n\n".join(
        [head.replace("\n", "  \n"), render(config, info, summary, found, runs, True), notes()]
    )
    for name in (f"results-{stamp}", "latest"):
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(data, f, indent=1, default=str)
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(md + "\n")
    log(f"wrote {os.path.join(args.out, 'latest.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
