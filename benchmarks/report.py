"""Turn the runs into medians with min–max, the targets of issue 4, and text / markdown."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from benchmarks.systems import PEERS

SYSTEM_ORDER = ("pq", "pq-async", "raw", "persist-queue", "litequeue", "huey")
ROWS = (  # (key, label, higher is better)
    ("put", "put, one per call (jobs/s)", True),
    ("put_many", "put_many, 10,000 per call (jobs/s)", True),
    ("claim_ack", "claim+ack, 1 consumer (jobs/s)", True),
    ("consume", "consume(), 1 consumer (jobs/s)", True),
    ("batch", "get_many(10)+done_many, 1 consumer (jobs/s)", True),
    ("consumers4", "claim+ack, 4 processes (jobs/s)", True),
    ("consumers8", "claim+ack, 8 processes (jobs/s)", True),
    ("claim_history", "claim+ack, {history} done jobs present (jobs/s)", True),
    ("sweep", "manager sweep, {expired} expired leases (s)", False),
    ("stats", "stats(), {history} jobs (ms)", False),
    ("items", "items(status=dead, limit=100), {history} jobs (ms)", False),
)
POSTGRES = "postgres"  # the summary's section for PostgreSQL runs (SQLite's: full, normal)


def row_key(result: dict[str, Any]) -> str:
    if "row" in result:
        return result["row"]
    if result["workload"] == "consumers":
        return f"consumers{result['consumers']}"
    return result["workload"]


def section_of(result: dict[str, Any]) -> str:
    return result.get("section") or result["durability"]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """{section: {row: {system: {median, min, max, n, runs}}}}; a section is a SQLite
    durability (full, normal) or `postgres`."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if "value" in r and not math.isnan(r["value"]):
            grouped[(section_of(r), row_key(r), r["system"])].append(r)
    out: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    for (section, row, system), rs in grouped.items():
        values = [r["value"] for r in rs]
        cell = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "rounds": len(values),
            "unit": rs[0]["unit"],
            "capped": any(r.get("capped") for r in rs),
        }
        if row.startswith("consumers"):
            for key in ("duplicates", "duplicated_jobs", "lost", "stranded", "errors"):
                cell[key] = sum(r[key] for r in rs)
            for key in ("p50_ms", "p99_ms", "ack_p50_ms", "ack_p99_ms", "busiest_share"):
                if all(key in r for r in rs):
                    cell[key] = statistics.median(r[key] for r in rs)
            cell["error_samples"] = sorted({e for r in rs for e in r["error_samples"]})[:3]
        if row == "latency":
            for key in ("duplicates", "lost", "errors"):
                cell[key] = sum(r[key] for r in rs)
            for key in ("p95_ms", "max_ms"):
                cell[key] = statistics.median(r[key] for r in rs)
            cell["p95_min"] = min(r["p95_ms"] for r in rs)
            cell["p95_max"] = max(r["p95_ms"] for r in rs)
            cell["samples"] = sum(r["samples"] for r in rs)
            cell["error_samples"] = sorted({e for r in rs for e in r["error_samples"]})[:3]
        if row == "stats":
            cell["raw_count_scan_ms"] = statistics.median(r["raw_count_scan_ms"] for r in rs)
        out[section][row][system] = cell
    return {d: {row: dict(cells) for row, cells in rows.items()} for d, rows in out.items()}


def skips(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Why a system × row was not measured: {"section/row/system": reason}."""
    return {
        f"{section_of(r)}/{row_key(r)}/{r['system']}": r["skipped"] for r in runs if "skipped" in r
    }


def _median(summary: dict[str, Any], durability: str, row: str, system: str) -> float | None:
    cell = summary.get(durability, {}).get(row, {}).get(system)
    return None if cell is None else cell["median"]


def _best_peer(
    summary: dict[str, Any], durability: str, row: str, peers: tuple[str, ...] = PEERS
) -> tuple[str | None, float | None]:
    found = [(v, p) for p in peers if (v := _median(summary, durability, row, p)) is not None]
    if not found:
        return None, None
    value, peer = max(found)
    return peer, value


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 4 with its number, from this run's medians. `raw` is the same
    ratio for raw sqlite3 (its fused loop for consume), the ceiling a SQLite queue can reach."""
    out: list[dict[str, Any]] = []

    def m(d: str, row: str, system: str) -> float | None:
        return _median(summary, d, row, system)

    def ratio(
        name: str,
        d: str,
        num: tuple[str, str],
        den: tuple[str, str] | str,
        goal: float,
        raw_num: tuple[str, str] | None = None,
    ) -> None:
        if den == "best peer":
            against, bottom = _best_peer(summary, d, num[0] if num[0] != "consume" else "claim_ack")
            den_row = "claim_ack"
        else:
            against, bottom, den_row = den[1], m(d, *den), den[0]
            if den[1] == num[1]:
                against = f"{den[1]}, {den[0]}"
        top = m(d, *num)
        value = None if top is None or not bottom else top / bottom
        raw_top = m(d, *raw_num) if raw_num else None
        raw_bottom = bottom if den == "best peer" else m(d, den_row, "raw")
        ceiling = None if raw_top is None or not raw_bottom else raw_top / raw_bottom
        out.append(
            {
                "target": name,
                "durability": d,
                "value": value,
                "goal": f"≥ {goal:g}×",
                "met": value is not None and value >= goal,
                "against": against or "",
                "raw": ceiling,
            }
        )

    def limit(name: str, d: str, row: str, goal: float, unit: str, raw: float | None) -> None:
        value = m(d, row, "pq")
        out.append(
            {
                "target": name,
                "durability": d,
                "value": value,
                "goal": f"< {goal:g} {unit}",
                "met": value is not None and value < goal,
                "against": "",
                "unit": unit,
                "raw": raw,
            }
        )

    ratio("put vs raw single-insert transactions", "full", ("put", "pq"), ("put", "raw"), 0.9)
    ratio("put_many vs raw executemany", "full", ("put_many", "pq"), ("put_many", "raw"), 0.5)
    for d in ("full", "normal"):
        ratio(
            "claim+ack vs raw two-transaction loop",
            d,
            ("claim_ack", "pq"),
            ("claim_ack", "raw"),
            0.9,
        )
    ratio(
        "claim+ack vs best peer",
        "normal",
        ("claim_ack", "pq"),
        "best peer",
        3,
        ("claim_ack", "raw"),
    )
    ratio(
        "consume() vs raw two-transaction loop",
        "full",
        ("consume", "pq"),
        ("claim_ack", "raw"),
        1.5,
        ("consume", "raw"),
    )
    ratio(
        "consume() vs best peer (its claim+ack loop)",
        "full",
        ("consume", "pq"),
        "best peer",
        3,
        ("consume", "raw"),
    )
    for k in (4, 8):
        ratio(
            f"{k} consumer processes vs one",
            "full",
            (f"consumers{k}", "pq"),
            ("claim_ack", "pq"),
            0.9,
            (f"consumers{k}", "raw"),
        )
        cells = [c for d in summary if (c := summary[d].get(f"consumers{k}", {}).get("pq"))]
        bad = {key: sum(c[key] for c in cells) for key in ("duplicates", "lost", "errors")}
        out.append(
            {
                "target": f"{k} consumer processes: duplicates / lost / errors",
                "durability": "both",
                "value": f"{bad['duplicates']} / {bad['lost']} / {bad['errors']}"
                if cells
                else None,
                "goal": "0 / 0 / 0",
                "met": bool(cells) and not any(bad.values()),
                "against": "",
                "raw": None,
            }
        )
    ratio(
        "claim+ack with the history present vs an empty store",
        "full",
        ("claim_history", "pq"),
        ("claim_ack", "pq"),
        0.8,
        ("claim_history", "raw"),
    )
    raw_sweep = m("full", "sweep", "raw")
    limit("manager sweep of the expired leases", "full", "sweep", 2, "s", raw_sweep)
    scan = summary.get("full", {}).get("stats", {}).get("pq", {}).get("raw_count_scan_ms")
    limit("stats() on the big store", "full", "stats", 50, "ms", scan)
    return out


def _goal_met(value: float | None, goal: float, op: str) -> bool:
    return value is not None and (value >= goal if op == "≥" else value <= goal)


def _ratio_target(
    summary: dict[str, Any],
    skipped: dict[str, str],
    name: str,
    section: str,
    num: tuple[str, str],
    den: tuple[str, str],
    goal: float | None,
    op: str = "≥",
    raw_num: tuple[str, str] | None = None,
    issue: str = "",
) -> dict[str, Any]:
    """num / den of medians in one section; `raw_num / den` is what the reference (raw
    sqlite3 or raw psycopg) does in pq's place. goal None: shown for reference only."""
    top, bottom = _median(summary, section, *num), _median(summary, section, *den)
    value = None if top is None or not bottom else top / bottom
    raw_top = _median(summary, section, *raw_num) if raw_num else None
    why = ""
    if value is None:
        for row, system in (num, den):
            reason = skipped.get(f"{section}/{row}/{system}")
            if reason:
                why = reason
                break
    return {
        "target": name,
        "durability": section,
        "value": value,
        "goal": "reference" if goal is None else f"{op} {goal:g}×",
        "goal_value": goal,
        "met": None if goal is None else _goal_met(value, goal, op),
        "against": f"{den[1]}, {den[0]}" if den[1] != num[1] or den[0] != num[0] else den[1],
        "raw": None if raw_top is None or not bottom else raw_top / bottom,
        "why": why,
        "issue": issue,
    }


def _clean(summary: dict[str, Any], section: str, rows: tuple[str, ...], system: str) -> dict:
    cells = [c for row in rows if (c := summary.get(section, {}).get(row, {}).get(system))]
    bad = {key: sum(c.get(key, 0) for c in cells) for key in ("duplicates", "lost", "errors")}
    return {
        "value": f"{bad['duplicates']} / {bad['lost']} / {bad['errors']}" if cells else None,
        "goal": "0 / 0 / 0",
        "met": bool(cells) and not any(bad.values()),
        "against": "",
        "raw": None,
        "why": "",
    }


def _clean_all(summary: dict[str, Any], section: str, systems: tuple[str, ...]) -> dict:
    rows = tuple(summary.get(section, {}))
    parts = [_clean(summary, section, rows, system) for system in systems]
    parts = [p for p in parts if p["value"] is not None]
    if not parts:
        return _clean(summary, section, (), "")
    totals = [sum(int(p["value"].split(" / ")[i]) for p in parts) for i in range(3)]
    return {**parts[0], "value": " / ".join(map(str, totals)), "met": not any(totals)}


def issue11_sqlite_targets(
    summary: dict[str, Any], skipped: dict[str, str]
) -> list[dict[str, Any]]:
    """Issue 11, point 2: SQLite at FULL against raw sqlite3 doing the same work."""
    d, raw2 = "full", ("claim_ack", "raw")

    def t(*args: Any, **kw: Any) -> dict[str, Any]:
        return _ratio_target(summary, skipped, *args, issue="11", **kw)

    out = [
        t("put_many vs raw executemany", d, ("put_many", "pq"), ("put_many", "raw"), 0.5),
        t("get + done vs raw 2-commit loop", d, ("claim_ack", "pq"), raw2, 0.95),
        t(
            "consume() vs raw 2-commit loop (2.0× is the limit)",
            d,
            ("consume", "pq"),
            raw2,
            1.8,
            raw_num=("consume", "raw"),
        ),
        t(
            "get_many(10) + done_many vs raw 2-commit loop",
            d,
            ("batch", "pq"),
            raw2,
            8,
            raw_num=("batch", "raw"),
        ),
        t(
            "8 consumer processes vs 1 process",
            d,
            ("consumers8", "pq"),
            ("claim_ack", "pq"),
            0.9,
            raw_num=("consumers8", "raw"),
        ),
        {
            "target": "8 consumer processes: duplicates / lost / errors",
            "durability": d,
            "issue": "11",
            **_clean(summary, d, ("consumers8",), "pq"),
        },
        t(
            "async consume() vs sync consume()",
            d,
            ("consume", "pq-async"),
            ("consume", "pq"),
            0.8,
        ),
    ]
    # raw's own ceiling for the 8-process ratio is raw 8 processes over raw's own 1 process.
    raw8, raw1 = _median(summary, d, "consumers8", "raw"), _median(summary, d, "claim_ack", "raw")
    out[4]["raw"] = raw8 / raw1 if raw8 and raw1 else None
    return out


def issue9_targets(summary: dict[str, Any], skipped: dict[str, str]) -> list[dict[str, Any]]:
    """Issue 9, point 8 (and issue 11's async target) on PostgreSQL."""
    pg = POSTGRES

    def t(*args: Any, **kw: Any) -> dict[str, Any]:
        return _ratio_target(summary, skipped, *args, **kw)

    out = [
        t(
            "put, one per call, vs pgqueuer (asyncpg)",
            pg,
            ("put", "pq"),
            ("put", "pgqueuer"),
            1.3,
            raw_num=("put", "raw"),
            issue="9",
        )
    ]
    for k in (1, 4):
        row = f"consumers{k}"
        out.append(
            t(
                f"consume(), {k} process{'es' if k > 1 else ''}, vs pgqueuer batch 1",
                pg,
                (row, "pq"),
                (row, "pgqueuer-b1"),
                4,
                raw_num=(row, "raw-fused"),
                issue="9",
            )
        )
    for k in (1, 4):
        row = f"consumers{k}"
        out.append(
            t(
                f"get_many(10) + done_many, {k} process{'es' if k > 1 else ''}, "
                "vs pgqueuer batch 10",
                pg,
                (row, "pq-batch"),
                (row, "pgqueuer"),
                1.2,
                issue="9",
            )
        )
    out.append(
        t(
            "put → waiting consumer p50 vs pgqueuer's",
            pg,
            ("latency", "pq"),
            ("latency", "pgqueuer"),
            0.8,
            op="≤",
            issue="9",
        )
    )
    out.append(
        {
            "target": "duplicates / lost / errors (every consumer run and latency run)",
            "durability": pg,
            "issue": "9",
            **_clean(summary, pg, ("consumers1", "consumers4", "latency"), "pq"),
        }
    )
    out.append(
        {
            "target": "duplicates / lost / errors, every other way of driving pq",
            "durability": pg,
            "issue": "9",
            **_clean_all(summary, pg, ("pq-getdone", "pq-batch", "pq-async")),
        }
    )
    out.append(
        t(
            "async consume() vs sync consume(), 1 process",
            pg,
            ("consumers1", "pq-async"),
            ("consumers1", "pq"),
            0.8,
            issue="11",
        )
    )
    # Issue 11's SQLite ratios, measured on PostgreSQL for reference (no target there).
    raw2 = ("consumers1", "raw")
    out += [
        t("get + done vs raw 2-statement loop", pg, ("consumers1", "pq-getdone"), raw2, None),
        t(
            "consume() vs raw 2-statement loop",
            pg,
            ("consumers1", "pq"),
            raw2,
            None,
            raw_num=("consumers1", "raw-fused"),
        ),
        t(
            "get_many(10) + done_many vs raw 2-statement loop",
            pg,
            ("consumers1", "pq-batch"),
            raw2,
            None,
        ),
        t("put_many vs raw executemany", pg, ("put_many", "pq"), ("put_many", "raw"), None),
        t(
            "consume(), 4 processes vs 1",
            pg,
            ("consumers4", "pq"),
            ("consumers1", "pq"),
            None,
            raw_num=("consumers4", "raw-fused"),
        ),
    ]
    raw4, raw1 = (_median(summary, pg, f"consumers{k}", "raw-fused") for k in (4, 1))
    out[-1]["raw"] = raw4 / raw1 if raw4 and raw1 else None
    out.append(
        t(
            "get + done, 8 processes vs 1",
            pg,
            ("consumers8", "pq-getdone"),
            ("consumers1", "pq-getdone"),
            None,
            raw_num=("consumers8", "raw"),
        )
    )
    raw8, raw1 = (_median(summary, pg, f"consumers{k}", "raw") for k in (8, 1))
    out[-1]["raw"] = raw8 / raw1 if raw8 and raw1 else None
    return out


def peer_ratios(summary: dict[str, Any], durability: str, row: str) -> str:
    """pq's claim+ack (or consume) against each peer's claim+ack, as text."""
    top = _median(summary, durability, row, "pq")
    parts = []
    for peer in PEERS:
        bottom = _median(summary, durability, "claim_ack", peer)
        if top and bottom:
            parts.append(f"{peer} {top / bottom:.2f}×")
    return ", ".join(parts)


# -- formatting ------------------------------------------------------------------------------


def _num(value: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    unit = cell["unit"]
    text = _num(cell["median"], unit)
    if cell["rounds"] > 1:
        text += f" ({_num(cell['min'], unit)}–{_num(cell['max'], unit)})"
    if cell.get("capped"):
        text += " †"
    return text


def _label(label: str, config: dict[str, Any]) -> str:
    return label.format(history=f"{config['history']:,}", expired=f"{config['expired']:,}")


def table_rows(summary: dict[str, Any], durability: str, config: dict[str, Any]) -> list[list]:
    rows = [["workload", *SYSTEM_ORDER]]
    for key, label, _ in ROWS:
        cells = summary.get(durability, {}).get(key, {})
        if cells:
            rows.append([_label(label, config), *(cell_text(cells.get(s)) for s in SYSTEM_ORDER)])
    return rows


def consumer_rows(summary: dict[str, Any], durability: str) -> list[list]:
    head = "system procs jobs/s duplicate-deliveries(jobs) lost left-ready errors-to-caller"
    head += " claim-p50-ms claim-p99-ms ack-p50-ms ack-p99-ms busiest-process"
    rows = [[h.replace("-", " ").replace("(", " (") for h in head.split()]]
    for k in (4, 8):
        cells = summary.get(durability, {}).get(f"consumers{k}", {})
        for system in SYSTEM_ORDER:
            c = cells.get(system)
            if c is None:
                continue
            rows.append(
                [
                    system,
                    str(k),
                    cell_text(c),
                    f"{c['duplicates']} ({c['duplicated_jobs']})",
                    str(c["lost"]),
                    str(c["stranded"]),
                    str(c["errors"]),
                    f"{c['p50_ms']:.2f}",
                    f"{c['p99_ms']:.2f}",
                    f"{c['ack_p50_ms']:.2f}",
                    f"{c['ack_p99_ms']:.2f}",
                    f"{c['busiest_share']:.0%}",
                ]
            )
    return rows


def target_rows(found: list[dict[str, Any]], raw_label: str = "raw sqlite3 does") -> list[list]:
    setting = "server" if found and found[0]["durability"] == POSTGRES else "durability"
    rows = [["target", setting, "pq", "goal", "against", raw_label, "verdict"]]
    for t in found:
        v, raw = t["value"], t.get("raw")
        if v is None:
            shown = "n/a"
        elif isinstance(v, str):
            shown = v
        elif "unit" in t:
            shown = f"{v:.3g} {t['unit']}"
        else:
            shown = f"{v:.2f}×"
            if t.get("met") is False and f"{v:.2f}" == f"{t.get('goal_value') or 0:.2f}":
                shown = f"{v:.3f}×"  # missed by less than the rounding shows
        if raw is None:
            raw_shown = ""
        elif "unit" in t:
            raw_shown = f"{raw:.3g} {t['unit']}"
        else:
            raw_shown = f"{raw:.2f}×"
        if v is None:
            verdict = f"not run: {t['why']}" if t.get("why") else "not run"
        elif t["met"] is None:
            verdict = "(reference)"
        else:
            verdict = "met" if t["met"] else "MISSED"
        where = "defaults" if t["durability"] == POSTGRES else t["durability"]
        rows.append([t["target"], where, shown, t["goal"], t["against"], raw_shown, verdict])
    return rows


# -- PostgreSQL tables -------------------------------------------------------------------------

PG_ORDER = (
    "pq",
    "pq-getdone",
    "pq-batch",
    "pq-async",
    "raw",
    "raw-fused",
    "pgqueuer",
    "pgqueuer-b1",
    "pgqueuer-psycopg",
    "procrastinate",
)
PG_LABELS = {
    "pq": "pq: put / put_many / consume() / get(timeout)",
    "pq-getdone": "pq: get() + done()",
    "pq-batch": "pq: get_many(10) + done_many()",
    "pq-async": "pq: AsyncQueue consume()",
    "raw": "raw psycopg: 1 statement per op, claim + ack",
    "raw-fused": "raw psycopg: ack + next claim in 1 statement",
    "pgqueuer": "pgqueuer (asyncpg): enqueue / worker batch 10 (default)",
    "pgqueuer-b1": "pgqueuer (asyncpg): worker batch 1",
    "pgqueuer-psycopg": "pgqueuer (psycopg driver): enqueue",
    "procrastinate": "procrastinate: defer_async / worker",
}
PG_SHORT = {"pq": "pq", "pq-batch": "pq: get_many(10)", "pq-async": "pq: async consume()"}
PG_COLUMNS = (  # (row, heading)
    ("put", "put, one per call"),
    ("put_many", "batch put {pg_batches}×{pg_batch}"),
    ("consumers1", "1 consumer"),
    ("consumers4", "4 consumer processes"),
    ("consumers8", "8 consumer processes"),
    ("latency", "put → waiting consumer p50 / p95 ms"),
)


def _latency_text(cell: dict[str, Any]) -> str:
    text = f"{cell['median']:.1f} / {cell['p95_ms']:.1f}"
    if cell["rounds"] > 1:
        text += (
            f" ({cell['min']:.1f}–{cell['max']:.1f} / {cell['p95_min']:.1f}–{cell['p95_max']:.1f})"
        )
    return text


def pg_table_rows(
    summary: dict[str, Any], config: dict[str, Any], skipped: dict[str, str]
) -> list[list]:
    """One row per system (and way of driving it), one column per workload, jobs/s."""
    cells = summary.get(POSTGRES, {})
    head = ["system (jobs/s)"]
    sizes = {"pg_batch": f"{config['pg_batch']:,}", "pg_batches": config["pg_batches"]}
    head += [label.format(**sizes) for _, label in PG_COLUMNS]
    rows = [head]
    for system in PG_ORDER:
        line = [PG_LABELS[system]]
        for row, _ in PG_COLUMNS:
            cell = cells.get(row, {}).get(system)
            if cell is None:
                line.append("missing" if f"{POSTGRES}/{row}/{system}" in skipped else "—")
            elif row == "latency":
                line.append(_latency_text(cell))
            else:
                line.append(cell_text(cell))
        if any(c not in ("—", "missing") for c in line[1:]) or any(
            f"{POSTGRES}/{row}/{system}" in skipped for row, _ in PG_COLUMNS
        ):
            rows.append(line)
    return rows


def pg_consumer_rows(summary: dict[str, Any]) -> list[list]:
    head = ["system", "procs", "jobs/s", "duplicate deliveries (jobs)", "lost", "left ready"]
    rows = [head + ["errors", "busiest process"]]
    cells = summary.get(POSTGRES, {})
    for row, procs in (
        ("consumers1", "1"),
        ("consumers4", "4"),
        ("consumers8", "8"),
        ("latency", "1 waiting"),
    ):
        for system in PG_ORDER:
            c = cells.get(row, {}).get(system)
            if c is None:
                continue
            rate = _latency_text(c) + " ms" if row == "latency" else cell_text(c)
            dup = f"{c['duplicates']}" + (
                f" ({c['duplicated_jobs']})" if "duplicated_jobs" in c else ""
            )
            rows.append(
                [
                    PG_SHORT.get(system, PG_LABELS[system]),
                    procs,
                    rate,
                    dup,
                    str(c["lost"]),
                    str(c.get("stranded", "")),
                    str(c["errors"]),
                    f"{c['busiest_share']:.0%}" if "busiest_share" in c else "",
                ]
            )
    return rows


def text_table(rows: list[list]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


# -- sections ----------------------------------------------------------------------------------

SQLITE_LEGEND = (
    "Multi-process columns: duplicate deliveries are extra deliveries summed over the rounds"
    " (in brackets, how many jobs were delivered more than once); lost = never delivered and"
    " not in the store; left ready = still ready when every consumer had stopped; errors that"
    " reached the caller (e.g. database is locked); claim and ack latency percentiles over"
    " every call of every process (median of the rounds); busiest process = the share of the"
    " jobs that one process handled."
)
PG_LEGEND = (
    "Every system × workload × round ran in a process of its own on a database of its own,"
    " created for it and dropped after it; rounds alternate which system goes first. Consumer"
    " rates count unique jobs from the first job any consumer received to the last one, so"
    " start-up (schema checks, LISTEN, worker registration) is not counted for any system; the"
    " ack of the very last job is not counted either. Consumers do nothing with a job. Latency:"
    " one consumer waits (pq: blocked in get(timeout=1); the peers: their worker, woken by"
    " LISTEN/NOTIFY); the producer puts a job every 15–25 ms; a job's latency runs from just"
    " before its put call to its consumer holding it; the first {warmup} of each run are not"
    " counted. Duplicates, losses and jobs left ready are counted from each job's sequence"
    " number."
)


def _title(text: str, markdown: bool) -> list[str]:
    return [f"### {text}" if markdown else text.upper(), ""]


def _machine_lines(runs: list[dict[str, Any]], quiet: float) -> list[str]:
    out = []
    capped = [
        f"{r['system']} {row_key(r)} {section_of(r)} round {r['round'] + 1}: "
        f"{r['ops']:,} ops in {r['seconds']:.1f} s"
        for r in runs
        if r.get("capped") and "ops" in r
    ]
    if capped:
        out.append("† stopped at the time cap before its count: " + "; ".join(capped) + ".")
    others = [r["others_cores"] for r in runs if "others_cores" in r]
    if others:
        busy = sum(1 for o in others if o > quiet)
        waited = sum(r.get("waited_for_quiet", 0) for r in runs)
        out.append(
            f"Other programs (and the kernel) used more than {quiet} of a core during "
            f"{busy} of {len(others)} measurements (median {statistics.median(others):.2f}, "
            f"max {max(others):.2f} cores); {waited:.0f} s were spent waiting for quiet cores."
        )
    server = [r["server_cores"] for r in runs if "server_cores" in r]
    if server:
        out.append(
            f"The PostgreSQL server's processes (everyone's backends) used a median of "
            f"{statistics.median(server):.2f} cores during the measurements (max "
            f"{max(server):.2f})."
        )
    warnings = [w for r in runs for w in r.get("warnings", [])]
    if warnings:
        out.append("Warnings: " + "; ".join(warnings))
    errors = [
        f"{r['system']} {row_key(r)} {section_of(r)}: {r['error']}" for r in runs if "error" in r
    ]
    if errors:
        out.append("Failed runs: " + "; ".join(errors))
    return out


def sqlite_section(
    config: dict[str, Any], summary: dict[str, Any], runs: list[dict[str, Any]], markdown: bool
) -> str:
    table = markdown_table if markdown else text_table
    skipped = skips(runs)
    out: list[str] = []
    for durability in config["durabilities"]:
        rounds = config["rounds"]
        out += _title(
            f"SQLite, synchronous={durability.upper()}, WAL: median (min–max) of {rounds} round(s)",
            markdown,
        )
        out += [table(table_rows(summary, durability, config)), ""]
        out += [table(consumer_rows(summary, durability)), ""]
    out += [SQLITE_LEGEND, ""]
    out += _title("Targets of issue 11 (SQLite at FULL)", markdown)
    out += [table(target_rows(issue11_sqlite_targets(summary, skipped))), ""]
    out += _title("Targets of issue 4", markdown)
    out += [table(target_rows(targets(summary))), ""]
    for d, row in (("normal", "claim_ack"), ("full", "claim_ack"), ("full", "consume")):
        shown = peer_ratios(summary, d, row)
        if shown:
            what = "claim+ack" if row == "claim_ack" else "consume()"
            out.append(f"pq {what} at {d.upper()} against each peer's claim+ack: {shown}.")
    stats_cell = summary.get("full", {}).get("stats", {}).get("pq")
    if stats_cell:
        out.append(
            f"Reference: a raw `SELECT status, count(*) … GROUP BY status` over the same "
            f"{config['history']:,}-job store takes {stats_cell['raw_count_scan_ms']:.0f} ms."
        )
    out += _missing_lines(skipped, POSTGRES, negate=True)
    out += _machine_lines(runs, config["quiet_cores"])
    return "\n".join(out)


def _missing_lines(skipped: dict[str, str], section: str, negate: bool = False) -> list[str]:
    reasons: dict[str, set[str]] = defaultdict(set)
    for key, why in skipped.items():
        sec, row, system = key.split("/")
        if (sec == section) != negate:
            reasons[f"{system}: {why}"].add(row)
    return [f"Not measured, {what} ({', '.join(sorted(rows))})." for what, rows in reasons.items()]


def postgres_section(
    config: dict[str, Any],
    server: dict[str, Any] | None,
    summary: dict[str, Any],
    runs: list[dict[str, Any]],
    markdown: bool,
    unavailable: str | None = None,
) -> str:
    if unavailable:
        return f"PostgreSQL not measured: {unavailable}."
    table = markdown_table if markdown else text_table
    skipped = skips(runs)
    s = server or {}
    out = _title(
        f"PostgreSQL {s.get('version', '?')}: median (min–max) of {config['rounds']} round(s)",
        markdown,
    )
    out += [
        "Server settings: "
        + ", ".join(f"{k}={s[k]}" for k in s if k not in ("version", "url"))
        + f"; server at {s.get('url', '?')}; 100-byte payloads; {config['pg_ops']:,} jobs per "
        f"put and consumer run, {config['pg_samples']} latency samples per run; time cap "
        f"{config['pg_cap']:g} s.",
        "",
    ]
    out += [table(pg_table_rows(summary, config, skipped)), ""]
    out += [table(pg_consumer_rows(summary)), ""]
    out += [PG_LEGEND.format(warmup=config["pg_warmup"]), ""]
    out += _title("Targets of issue 9 (point 8) and issue 11 on PostgreSQL", markdown)
    out += [table(target_rows(issue9_targets(summary, skipped), "raw psycopg does")), ""]
    out += [
        "Rows marked (reference) are issue 11's SQLite ratios measured on PostgreSQL; no target"
        " is set for them. 'raw psycopg does' is the same ratio with raw psycopg (one statement"
        " per operation, fused ack+claim for consume()) in pq's place.",
    ]
    out += _missing_lines(skipped, POSTGRES)
    out += _machine_lines(runs, config["quiet_cores"])
    return "\n".join(out)


BEGIN, END = "<!-- begin generated: {} -->", "<!-- end generated: {} -->"


def update_results(path: str, blocks: dict[str, tuple[str, str]]) -> None:
    """Replace each generated block of RESULTS.md ({name: (heading, text)}) between its
    markers, or append it under its heading when the file has no such block yet."""
    with open(path) as f:
        doc = f.read()
    for name, (heading, text) in blocks.items():
        begin, end = BEGIN.format(name), END.format(name)
        body = f"{begin}\n\n{text.strip()}\n\n{end}"
        if begin in doc and end in doc:
            head, rest = doc.split(begin, 1)
            doc = head + body + rest.split(end, 1)[1]
        else:
            doc = doc.rstrip("\n") + f"\n\n{heading}\n\n{body}\n"
    with open(path, "w") as f:
        f.write(doc)
