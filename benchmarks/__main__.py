"""`uv run --group bench python -m benchmarks [--quick] [--backend B] [--rounds N] …`

Runs pq side by side with its peers, each system × workload × round in a fresh store and a
process of its own, rounds alternated. SQLite: persist-queue, litequeue, huey and raw sqlite3 at
synchronous=FULL and NORMAL (WAL everywhere). PostgreSQL: pgqueuer, procrastinate and raw
psycopg, each in a database of its own on the server (--pg-url). Prints medians (min–max) and
the targets of issues 4, 9 and 11, and writes JSON and markdown to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks import machine, pg_server, report, workloads
from benchmarks.pg_systems import SYSTEMS as PG_SYSTEMS
from benchmarks.systems import SYSTEMS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIELD = ("pq", "raw", "persist-queue", "litequeue", "huey")  # every SQLite system with a claim
ALL = ("pq", "pq-async", "raw", "persist-queue", "litequeue", "huey")
PG_ALL = tuple(PG_SYSTEMS)
BACKENDS = ("sqlite", "postgres")
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
    "pg_ops": 2000,  # jobs per PostgreSQL put and consumer run
    "pg_batch": 1000,
    "pg_batches": 5,
    "pg_samples": 200,  # put → waiting consumer latencies per run
    "pg_warmup": 10,
    "pg_cap": 30.0,
}
QUICK = {
    **FULL,
    "rounds": 1,
    "ops": 500,
    "batches": 1,
    "history": 100_000,
    "expired": 20_000,
    "ready": 2000,
    "calls": 10,
    "cap": 5.0,
    "history_cap": 3.0,
    "pg_ops": 300,
    "pg_samples": 40,
    "pg_warmup": 5,
    "pg_cap": 8.0,
}

# (row, workload, systems, template kind or None, extra spec)
PLAN: list[tuple[str, str, tuple[str, ...], str | None, dict[str, Any]]] = [
    ("put", "put", FIELD, None, {}),
    ("put_many", "put_many", ("pq", "raw", "litequeue"), None, {}),
    ("claim_ack", "claim_ack", FIELD, None, {}),
    ("consume", "consume", ("pq", "pq-async", "raw"), None, {}),
    ("batch", "claim_batch", ("pq", "raw"), None, {"size": 10}),
    ("consumers4", "consumers", FIELD, None, {"consumers": 4}),
    ("consumers8", "consumers", FIELD, None, {"consumers": 8}),
    ("claim_history", "claim_history", ("pq", "raw", "litequeue", "persist-queue"), "history", {}),
    ("sweep", "sweep", ("pq", "raw"), "expired", {}),
    ("stats", "stats", ("pq",), "pq-history", {}),
    ("items", "items", ("pq",), "pq-history", {}),
]
# PostgreSQL: (row, workload, systems, extra spec)
PG_PLAN: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = [
    ("put", "put", ("pq", "raw", "pgqueuer", "pgqueuer-psycopg", "procrastinate"), {}),
    ("put_many", "put_many", ("pq", "raw", "pgqueuer", "pgqueuer-psycopg", "procrastinate"), {}),
    (
        "consumers1",
        "consumers",
        ("pq", "pq-getdone", "pq-batch", "pq-async", "raw", "raw-fused")
        + ("pgqueuer-b1", "pgqueuer", "procrastinate"),
        {"consumers": 1},
    ),
    (
        "consumers4",
        "consumers",
        ("pq", "pq-batch", "raw-fused", "pgqueuer-b1", "pgqueuer", "procrastinate"),
        {"consumers": 4},
    ),
    # issue 11's "8 processes / 1", on PostgreSQL for reference: get+done as on SQLite
    ("consumers8", "consumers", ("pq-getdone", "raw"), {"consumers": 8}),
    ("latency", "latency", ("pq", "pgqueuer", "procrastinate"), {}),
]
NOT_RUN = {
    "batch": "peers have no batch claim; raw claims 10 in one UPDATE and acks them in another",
    "put_many": "persist-queue and huey have no batch put",
    "consume": "peers have no fused consume loop: their claim+ack loop is their consumer;"
    " pq-async is pq's AsyncQueue",
    "claim_history": "huey deletes a task when it is dequeued, so it keeps no done jobs",
    "sweep": "peers have no manager; raw is one UPDATE of the expired rows in one transaction",
    "stats": "pq only (the raw count(*) … GROUP BY status scan is given as a reference)",
    "items": "pq only",
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=" ".join(__doc__.split("\n\n")[1].split())
    )
    p.add_argument(
        "--quick", action="store_true", help="one round, small counts (a few minutes; smoke test)"
    )
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument(
        "--pg-url",
        help=f"PostgreSQL server to measure on (default ${pg_server.URL_ENV} or "
        f"{pg_server.DEFAULT_URL}); each measurement creates and drops a database of its own",
    )
    p.add_argument("--rounds", type=int, help="rounds per system × workload (default 5)")
    p.add_argument("--ops", type=int, help="operations per fsync-bound SQLite workload")
    p.add_argument("--pg-ops", type=int, help="jobs per PostgreSQL put and consumer run")
    p.add_argument("--history", type=int, help="done jobs in the big store (default 1,000,000)")
    p.add_argument("--durability", choices=("full", "normal", "both"), default="both")
    p.add_argument(
        "--systems",
        help=f"comma-separated subset of: {', '.join(dict.fromkeys(ALL + PG_ALL))}",
    )
    rows = dict.fromkeys([r[0] for r in PLAN] + [r[0] for r in PG_PLAN])
    p.add_argument("--workloads", help=f"comma-separated subset of: {', '.join(rows)}")
    p.add_argument("--dir", help="where the stores go (default: the system's temp folder)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder")
    p.add_argument(
        "--update-results",
        action="store_true",
        help="also write the generated sections into benchmarks/RESULTS.md (for a full run)",
    )
    p.add_argument("--keep", action="store_true", help="keep the SQLite stores afterwards")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds in all to wait for other programs to leave the cores idle "
        "(default 120, --quick 10)",
    )
    return p.parse_args(argv)


def configure(args: argparse.Namespace) -> dict[str, Any]:
    config = dict(QUICK if args.quick else FULL)
    for key in ("rounds", "ops", "history", "pg_ops"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config["quick"] = args.quick
    config["backends"] = list(BACKENDS) if args.backend == "both" else [args.backend]
    config["durabilities"] = ["full", "normal"] if args.durability == "both" else [args.durability]
    config["systems"] = _subset(args.systems, dict.fromkeys(ALL + PG_ALL), "system")
    rows = dict.fromkeys([r[0] for r in PLAN] + [r[0] for r in PG_PLAN])
    config["workloads"] = _subset(args.workloads, rows, "workload")
    config["quiet_cores"] = QUIET_CORES
    return config


def _subset(text: str | None, known: Any, what: str) -> list[str]:
    if not text:
        return list(known)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        sys.exit(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return wanted


def _child(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.child", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s; the process was ended"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _templates(config: dict[str, Any], base: str, log: Any) -> dict[str, str]:
    """Build each big store once; every round copies it."""
    needed: list[tuple[str, int, int]] = []
    rows = {r[0]: r for r in PLAN}
    chosen = [rows[w] for w in config["workloads"] if w in rows]
    n, dead = config["history"], config["dead"]
    for _row, _, systems, kind, _ in chosen:
        for s in systems:
            if s not in config["systems"] or workloads.missing(s):
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


def run(
    config: dict[str, Any], base: str, log: Any, server: pg_server.Server | None
) -> list[dict[str, Any]]:
    templates = _templates(config, base, log) if "sqlite" in config["backends"] else {}
    runs: list[dict[str, Any]] = []
    for rnd in range(config["rounds"]):
        if "sqlite" in config["backends"]:
            runs += _sqlite_round(config, base, log, templates, rnd)
        if server is not None:
            runs += _pg_round(config, base, log, server, rnd)
    return runs


def _rotated(systems: tuple[str, ...], config: dict[str, Any], rnd: int) -> list[str]:
    chosen = [s for s in systems if s in config["systems"]]
    if not chosen:
        return []
    shift = rnd % len(chosen)
    return chosen[shift:] + chosen[:shift]  # rounds alternate who goes first


def _sqlite_round(
    config: dict[str, Any], base: str, log: Any, templates: dict[str, str], rnd: int
) -> list[dict[str, Any]]:
    runs = []
    plan = [r for r in PLAN if r[0] in config["workloads"]]
    for durability in config["durabilities"]:
        for row, workload, systems, kind, extra in plan:
            shown = []
            for system in _rotated(systems, config, rnd):
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
                result.update(system=system, workload=workload, durability=durability, row=row)
                result["section"], result["round"] = durability, rnd
                runs.append(result)
                shown.append(f"{system} {_short(result)}")
            if shown:
                log(
                    f"round {rnd + 1}/{config['rounds']} {durability:<8} {row:<13} "
                    + "  ".join(shown)
                )
    return runs


def _pg_round(
    config: dict[str, Any], base: str, log: Any, server: pg_server.Server, rnd: int
) -> list[dict[str, Any]]:
    runs = []
    url, password = pg_server.without_password(server.url)
    env = None if password is None else {**os.environ, "PGPASSWORD": password}
    for row, workload, systems, extra in PG_PLAN:
        if row not in config["workloads"]:
            continue
        shown = []
        for system in _rotated(systems, config, rnd):
            folder = os.path.join(base, f"r{rnd}-postgres-{row}-{system}")
            os.makedirs(folder, exist_ok=True)
            try:
                database = server.create(f"{system}-{row}")
            except Exception as exc:  # the server went away: say so, go on with the rest
                result = {"error": f"could not create a database: {exc}".strip()}
                result.update(system=system, workload=workload, durability="server", row=row)
                result["section"], result["round"] = report.POSTGRES, rnd
                runs.append(result)
                shown.append(f"{system} ERROR")
                continue
            spec = {
                "backend": "postgres",
                "system": system,
                "workload": workload,
                "url": pg_server.with_database(url, database),
                "app_name": f"{pg_server.TAG}-{server.run_id}",
                "folder": folder,
                "ops": config["pg_ops"],
                "cap": config["pg_cap"],
                "batch": config["pg_batch"],
                "batches": config["pg_batches"],
                "samples": config["pg_samples"],
                "warmup": config["pg_warmup"],
                **extra,
            }
            waited = _quiet(config)
            try:
                result = _child([json.dumps(spec)], spec["cap"] * 4 + 180, env)
            finally:
                warning = server.drop(database)
            if warning:
                result.setdefault("warnings", []).append(warning)
            for key in ("error", "skipped"):
                if key in result:
                    result[key] = pg_server.scrub(result[key], server.url)
            if "error_samples" in result:
                result["error_samples"] = [
                    pg_server.scrub(e, server.url) for e in result["error_samples"]
                ]
            result["waited_for_quiet"] = waited
            shutil.rmtree(folder, ignore_errors=True)
            result.update(system=system, workload=workload, durability="server", row=row)
            result["section"], result["round"] = report.POSTGRES, rnd
            runs.append(result)
            shown.append(f"{system} {_short(result)}")
        if shown:
            log(f"round {rnd + 1}/{config['rounds']} postgres {row:<13} " + "  ".join(shown))
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


def header(
    config: dict[str, Any],
    info: dict[str, Any],
    argv: list[str],
    seconds: float,
    checks: list[str],
    backends: list[str] | None = None,
) -> str:
    backends = config["backends"] if backends is None else backends
    mode = "quick (numbers only check the harness)" if config["quick"] else "full"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        f"Command: `{' '.join(['uv run --group bench python -m benchmarks', *argv])}`",
        f"Run: {mode}, {config['rounds']} round(s), {seconds / 60:.1f} minutes, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"disk {info['disk']}, {info['os']}",
        f"Python {info['python']}, SQLite {info['sqlite']}; {versions}",
    ]
    pg = info.get("postgres")
    if pg and "postgres" in backends:
        settings = ("synchronous_commit", "fsync", "full_page_writes", "shared_buffers")
        shown = ", ".join(f"{k}={pg[k]}" for k in settings + ("wal_level",))
        lines.append(f"PostgreSQL {pg['version']} at {pg['url']}: {shown}")
    if "sqlite" in backends:
        lines += [
            f"SQLite counts: 100-byte str per job; {config['ops']:,} jobs per put / claim+ack / "
            f"consume / batch / multi-process run; put_many {config['batches']} × "
            f"{config['batch']:,}; {config['history']:,} done jobs (+{config['dead']:,} dead, "
            f"+{config['ready']:,} ready for stats/items); {config['expired']:,} expired leases;"
            f" time cap {config['cap']:g} s per loop ({config['history_cap']:g} s with the "
            "history).",
            "SQLite durability: every system in WAL mode at the synchronous level of the table; "
            + ("all read back as asked." if not checks else "MISMATCH: " + "; ".join(checks)),
        ]
    return "\n".join(lines)


def notes(backends: list[str]) -> str:
    lines = ["How each system was driven:"]
    if "sqlite" in backends:
        lines += [f"- SQLite, {cls.name}: {cls.note}" for cls in SYSTEMS.values()]
        lines += [f"- SQLite, not run for {row}: {why}" for row, why in NOT_RUN.items()]
    if "postgres" in backends:
        lines += [f"- PostgreSQL, {cls.name}: {cls.note}" for cls in PG_SYSTEMS.values()]
    return "\n".join(lines)


def sections(
    config: dict[str, Any],
    info: dict[str, Any],
    summary: dict[str, Any],
    runs: list[dict[str, Any]],
    markdown: bool,
) -> dict[str, tuple[str, str]]:
    """{name: (heading, text)} for each backend that was asked for."""
    out = {}
    if "sqlite" in config["backends"]:
        mine = [r for r in runs if report.section_of(r) != report.POSTGRES]
        out["sqlite"] = ("## SQLite", report.sqlite_section(config, summary, mine, markdown))
    if "postgres" in config["backends"]:
        mine = [r for r in runs if report.section_of(r) == report.POSTGRES]
        text = report.postgres_section(
            config, info.get("postgres"), summary, mine, markdown, info.get("postgres_missing")
        )
        out["postgres"] = ("## PostgreSQL", text)
    return out


def main(argv: list[str]) -> int:
    args = parse(argv)
    config = configure(args)
    shown_argv = [pg_server.scrub(a, pg_server.server_url(args.pg_url)) for a in argv]
    config["keep"] = args.keep
    config["quiet_budget"] = args.quiet_wait
    if args.quiet_wait is None:
        config["quiet_budget"] = 10.0 if args.quick else 120.0
    base = tempfile.mkdtemp(prefix="pq-bench-", dir=args.dir)
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {text}", flush=True)

    info = machine.describe(base)
    log(f"stores in {base}; {info['cores']} cores, disk {info['disk']}, SQLite {info['sqlite']}")
    server = None
    if "postgres" in config["backends"]:
        url = pg_server.server_url(args.pg_url)
        why = pg_server.reachable(url)
        if why:
            info["postgres_missing"] = why
            log(f"PostgreSQL not measured: {why}")
        else:
            server = pg_server.Server(url)
            info["postgres"] = server.describe()
            pg = info["postgres"]
            log(
                f"PostgreSQL {pg['version']} at {pg['url']}: synchronous_commit="
                f"{pg['synchronous_commit']}, fsync={pg['fsync']}; one database per measurement"
            )
    try:
        runs = run(config, base, log, server)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        if server is not None:
            left = server.leftovers()
            for name in left:
                server.drop(name)
            server.close()
    seconds = time.perf_counter() - started
    summary = report.summarise(runs)
    checks = durability_check(runs)
    head = header(config, info, shown_argv, seconds, checks)
    print()
    print(head)
    for heading, text in sections(config, info, summary, runs, markdown=False).values():
        print()
        print(heading.lstrip("# ").upper())
        print()
        print(text)

    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    data = {
        "config": config,
        "machine": info,
        "seconds": seconds,
        "summary": summary,
        "runs": runs,
        "argv": shown_argv,
    }
    blocks = sections(config, info, summary, runs, markdown=True)
    md = "\n\n".join(
        [
            head.replace("\n", "  \n"),
            *(f"{heading}\n\n{text}" for heading, text in blocks.values()),
            notes(config["backends"]),
        ]
    )
    for name in (f"results-{stamp}", "latest"):
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(data, f, indent=1, default=str)
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(md + "\n")
    log(f"wrote {os.path.join(args.out, 'latest.md')} and .json")
    if args.update_results:

        def own_head(name: str) -> str:
            return header(config, info, shown_argv, seconds, checks, [name]).replace("\n", "  \n")

        # Each backend's block carries its own run header and notes, so a run of one backend
        # leaves the other's block as it was.
        report.update_results(
            os.path.join(HERE, "RESULTS.md"),
            {
                name: (heading, "\n\n".join([own_head(name), text, notes([name])]))
                for name, (heading, text) in blocks.items()
            },
        )
        log(f"updated {os.path.join(HERE, 'RESULTS.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
