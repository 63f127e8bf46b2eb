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
            for key in ("p50_ms", "p99_ms", "ack_p50_ms", "ack_p99_ms", "busiest_share"):
                cell[key] = statistics.median(r[key] for r in rs)
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


def target_rows(found: list[dict[str, Any]]) -> list[list]:
    rows = [["target", "durability", "pq", "goal", "against", "raw sqlite3 does", "verdict"]]
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
        if raw is None:
            raw_shown = ""
        elif "unit" in t:
            raw_shown = f"{raw:.3g} {t['unit']}"
        else:
            raw_shown = f"{raw:.2f}×"
        verdict = "not run" if v is None else "met" if t["met"] else "MISSED"
        rows.append(
            [t["target"], t["durability"], shown, t["goal"], t["against"], raw_shown, verdict]
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
