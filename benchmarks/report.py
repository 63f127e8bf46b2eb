"""Turn the runs into medians with min–max, the targets of issue 4, and text / markdown."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from benchmarks.systems import PEERS

SYSTEM_ORDER = ("pq", "raw", "persist-queue", "litequeue", "huey")
ROWS = (  # (key, label, higher is better)
    ("put", "put, one per call (jobs/s)", True),
    ("put_many", "put_many, 10,000 per call (jobs/s)", True),
    ("claim_ack", "claim+ack, 1 consumer (jobs/s)", True),
    ("consume", "consume(), 1 consumer (jobs/s)", True),
    ("consumers4", "claim+ack, 4 processes (jobs/s)", True),
    ("consumers8", "claim+ack, 8 processes (jobs/s)", True),
    ("claim_history", "claim+ack, {history} done jobs present (jobs/s)", True),
    ("sweep", "manager sweep, {expired} expired leases (s)", False),
    ("stats", "stats(), {history} jobs (ms)", False),
    ("items", "items(status=dead, limit=100), {history} jobs (ms)", False),
)


def row_key(result: dict[str, Any]) -> str:
    if result["workload"] == "consumers":
        return f"consumers{result['consumers']}"
    return result["workload"]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """{durability: {row: {system: {median, min, max, n, runs}}}}"""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if "value" in r and not math.isnan(r["value"]):
            grouped[(r["durability"], row_key(r), r["system"])].append(r)
    out: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    for (durability, row, system), rs in grouped.items():
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
            cell["p50_ms"] = statistics.median(r["p50_ms"] for r in rs)
            cell["p99_ms"] = statistics.median(r["p99_ms"] for r in rs)
            cell["error_samples"] = sorted({e for r in rs for e in r["error_samples"]})[:3]
        if row == "stats":
            cell["raw_count_scan_ms"] = statistics.median(r["raw_count_scan_ms"] for r in rs)
        out[durability][row][system] = cell
    return {d: {row: dict(cells) for row, cells in rows.items()} for d, rows in out.items()}


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
    """Every target of issue 4 with its number, from this run's medians."""
    out: list[dict[str, Any]] = []

    def ratio(
        name: str, durability: str, num: float | None, den: float | None, goal: float, against: str
    ) -> None:
        value = None if num is None or not den else num / den
        out.append(
            {
                "target": name,
                "durability": durability,
                "value": value,
                "goal": f"≥ {goal}×",
                "met": value is not None and value >= goal,
                "against": against,
            }
        )

    def limit(name: str, durability: str, value: float | None, goal: float, unit: str) -> None:
        out.append(
            {
                "target": name,
                "durability": durability,
                "value": value,
                "goal": f"< {goal:g} {unit}",
                "met": value is not None and value < goal,
                "against": "",
                "unit": unit,
            }
        )

    m = _median
    ratio(
        "put vs raw single-insert transactions",
        "full",
        m(summary, "full", "put", "pq"),
        m(summary, "full", "put", "raw"),
        0.9,
        "raw",
    )
    ratio(
        "put_many vs raw executemany",
        "full",
        m(summary, "full", "put_many", "pq"),
        m(summary, "full", "put_many", "raw"),
        0.5,
        "raw",
    )
    for d in ("full", "normal"):
        ratio(
            "claim+ack vs raw two-transaction loop",
            d,
            m(summary, d, "claim_ack", "pq"),
            m(summary, d, "claim_ack", "raw"),
            0.9,
            "raw",
        )
    peer, best = _best_peer(summary, "normal", "claim_ack")
    ratio(
        "claim+ack vs best peer",
        "normal",
        m(summary, "normal", "claim_ack", "pq"),
        best,
        3,
        peer or "",
    )
    ratio(
        "consume() vs raw two-transaction loop",
        "full",
        m(summary, "full", "consume", "pq"),
        m(summary, "full", "claim_ack", "raw"),
        1.5,
        "raw",
    )
    peer, best = _best_peer(summary, "full", "claim_ack")
    ratio(
        "consume() vs best peer (its claim+ack loop)",
        "full",
        m(summary, "full", "consume", "pq"),
        best,
        3,
        peer or "",
    )
    for k in (4, 8):
        ratio(
            f"{k} consumer processes vs one",
            "full",
            m(summary, "full", f"consumers{k}", "pq"),
            m(summary, "full", "claim_ack", "pq"),
            0.9,
            "pq, 1 process",
        )
        cells = [summary.get(d, {}).get(f"consumers{k}", {}).get("pq") for d in summary]
        cells = [c for c in cells if c]
        bad = {key: sum(c[key] for c in cells) for key in ("duplicates", "lost", "errors")}
        out.append(
            {
                "target": f"{k} consumer processes: duplicates / lost / lock errors",
                "durability": "both",
                "value": f"{bad['duplicates']} / {bad['lost']} / {bad['errors']}",
                "goal": "0 / 0 / 0",
                "met": bool(cells) and not any(bad.values()),
                "against": "",
            }
        )
    ratio(
        "claim+ack with the history present vs an empty store",
        "full",
        m(summary, "full", "claim_history", "pq"),
        m(summary, "full", "claim_ack", "pq"),
        0.8,
        "pq, empty store",
    )
    limit("manager sweep of the expired leases", "full", m(summary, "full", "sweep", "pq"), 2, "s")
    limit("stats() on the big store", "full", m(summary, "full", "stats", "pq"), 50, "ms")
    return out


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
    rows = [
        [
            "system",
            "procs",
            "jobs/s",
            "dup. deliveries (jobs)",
            "lost",
            "left ready",
            "errors to caller",
            "claim p50 ms",
            "claim p99 ms",
        ]
    ]
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
                ]
            )
    return rows


def target_rows(found: list[dict[str, Any]]) -> list[list]:
    rows = [["target", "durability", "result", "goal", "against", "verdict"]]
    for t in found:
        v = t["value"]
        if v is None:
            shown = "n/a"
        elif isinstance(v, str):
            shown = v
        elif "unit" in t:
            shown = f"{v:.3g} {t['unit']}"
        else:
            shown = f"{v:.2f}×"
        rows.append(
            [
                t["target"],
                t["durability"],
                shown,
                t["goal"],
                t["against"],
                "met" if t["met"] else "MISSED",
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
