"""How queue values are shown: payloads and errors as inert text, ages and durations as words.

Everything a producer or a consumer wrote (payloads, errors, worker ids, queue names) reaches the
screen through `inert`, which returns a rich Text built from plain strings: markup is never
parsed, and control characters (ANSI and OSC sequences, bidi overrides, NUL …) are replaced by
visible, highlighted escapes such as `\\x1b`, so nothing a job carries can restyle or drive the
terminal.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from rich.text import Text

from pq_core import Status
from pq_core.display import escape_char

ESCAPE_STYLE = "reverse"  # an escape must not be mistaken for the same characters typed literally

STATUS_STYLE: dict[Status, str] = {
    Status.READY: "bold cyan",
    Status.IN_PROGRESS: "bold yellow",
    Status.DONE: "green",
    Status.DEAD: "bold red",
}

STATUS_LABEL: dict[Status, str] = {
    Status.READY: "ready",
    Status.IN_PROGRESS: "in progress",
    Status.DONE: "done",
    Status.DEAD: "dead",
}

SCHEDULED_LABEL = "scheduled"  # ready, but not before a later time (delayed or backing off)
SCHEDULED_STYLE = "bold blue"


def inert(value: str, *, multiline: bool = False, limit: int | None = None) -> Text:
    """`value` as Text that shows every character and interprets none.

    With `multiline`, newlines (and tabs) stay layout; otherwise they are escaped too, so a
    value fits one table cell. With `limit`, only the first `limit` characters are kept and an
    ellipsis marks the cut."""
    cut = limit is not None and len(value) > limit
    if cut:
        value = value[:limit]
    text = Text(no_wrap=not multiline, overflow=None if multiline else "ellipsis", end="")
    lines = value.split("\n") if multiline else [value]
    for number, line in enumerate(lines):
        if number:
            text.append("\n")
        if line.isprintable():  # the common case, checked in C
            text.append(line)
            continue
        plain_from = 0
        for index, ch in enumerate(line):
            if ch.isprintable() or (multiline and ch == "\t"):
                continue
            if plain_from < index:
                text.append(line[plain_from:index])
            text.append(escape_char(ch), style=ESCAPE_STYLE)
            plain_from = index + 1
        if plain_from < len(line):
            text.append(line[plain_from:])
    if cut:
        text.append("…", style="dim")
    return text


def error_line(error: str | None) -> str:
    """The line of an error that says most: the last one (a traceback ends with the exception),
    after "… " when lines were left out."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return error.strip()
    return "… " + lines[-1]


def clip(value: str, limit: int) -> str:
    """`value` cut to at most `limit` characters at a word's end, "…" marking the cut."""
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,:;(") + "…"


def event_line(detail: str) -> str:
    """An event's detail on one line. A failure's detail is "attempt 2/3: <error>"; when the
    error is a traceback, its last line says what happened, so that line is kept after the
    first line's lead ("attempt 2/3: … KeyError: 'first_name'")."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return detail.strip()
    lead, sep, _ = lines[0].partition(": ")
    return f"{lead}{sep}… {lines[-1]}" if sep else f"{lines[0]} … {lines[-1]}"


def payload_text(payload: Any, *, pretty: bool = False) -> str:
    """A payload as the string to show: str as is, bytes decoded with \\x escapes for what is
    not UTF-8, anything else as JSON (indented when `pretty`)."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "backslashreplace")
    if pretty:
        return json.dumps(payload, ensure_ascii=False, indent=2)
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))


def payload_kind(payload: Any) -> str:
    if isinstance(payload, str):
        return "text"
    if isinstance(payload, bytes):
        return "bytes"
    return "JSON"


def span(seconds: float) -> str:
    """A duration in the largest units that matter: 42s, 3m05s, 2h10m, 4d03h."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def until(seconds: float) -> str:
    """How long until a moment, in one unit, to fit a narrow column: "in 42s", "in 4m",
    "in 20h", "in 3d" (never "in 0s": a moment still ahead is at least a second away)."""
    seconds = max(math.ceil(seconds), 1)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def ago(moment: datetime | float | None, now: float) -> str:
    """How long before `now` (epoch seconds) `moment` was: "3m05s ago", "just now"."""
    if moment is None:
        return "never"
    seconds = now - (moment if isinstance(moment, float | int) else moment.timestamp())
    if seconds < 1:
        return "just now"
    return f"{span(seconds)} ago"


def utc(moment: datetime) -> str:
    """A moment as a sortable UTC time, for history and detail views."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[int, ...] | list[int], top: int | None = None) -> str:
    """One character per value, scaled so that `top` (by default the largest value) is the
    full bar; zero is the lowest bar, anything above zero at least the second."""
    if not values:
        return ""
    top = max(values) if top is None else top
    if top <= 0:
        return _BARS[0] * len(values)
    steps = len(_BARS) - 1
    return "".join(
        _BARS[0 if v <= 0 else min(max(1, round(v / top * steps)), steps)] for v in values
    )


def count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
