"""How the `pq` command shows values to a person: inert text, counts and durations.

Everything a producer, consumer or operator wrote (payloads, errors, queue names, actors,
details, worker ids) reaches a terminal through `inert` or `inert_json`: control characters
(ANSI and OSC sequences, BEL, bidi overrides, NUL …) become visible escapes such as `\\x1b`,
so nothing a job carries can drive the terminal, write its clipboard or hide text.
Standard library only: the `pq` command and `pq worker` run where Textual is not installed.
"""

from __future__ import annotations

import json
import math
from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_char(ch: str) -> str:
    """The repr-style escape of one character: \\x1b, \\u202e, \\U000e0001."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(value: object) -> str:
    """`value` as one line of text that shows every character and interprets none."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(ch if ch.isprintable() else escape_char(ch) for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a JSON string spells a character beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def inert_json(value: Any, *, indent: int | None = None) -> str:
    """`value` as JSON that keeps non-ASCII text readable but carries no raw control
    character: json.dumps escapes C0 controls already; DEL, C1 controls (8-bit CSI), bidi
    overrides and other invisible characters are escaped here as \\uXXXX."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    lines = text.split("\n")  # with indent, newlines are layout: every string has \\n escaped
    for number, line in enumerate(lines):
        if not line.isprintable():
            lines[number] = "".join(ch if ch.isprintable() else _json_escape(ch) for ch in line)
    return "\n".join(lines)


def count(n: int, noun: str | None = None) -> str:
    """1234 → '1,234'; with a noun, '1 job' / '1,234 jobs'."""
    shown = f"{n:,}"
    if noun is None:
        return shown
    return f"{shown} {noun}" if n == 1 else f"{shown} {noun}s"


def age(seconds: float | None) -> str:
    """How long ago, in whole seconds: '5s', '3m20s', '2d4h'."""
    return duration(None if seconds is None else float(int(max(seconds, 0.0))))


_PAIRS = (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1))


def duration(seconds: float | None) -> str:
    """Seconds as people write them: '0.5s', '30s', '5m', '1h30m', '7d'; two units at most,
    so a duration shown can be read at a glance. None → '-'."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 10 and seconds != int(seconds):
        shown = f"{seconds:.2f}" if seconds < 1 else f"{seconds:.1f}"
        return shown.rstrip("0").rstrip(".") + "s"
    whole = int(round(seconds))
    for big, big_size, small, small_size in _PAIRS:
        if whole >= big_size:
            rest = whole % big_size // small_size
            return f"{whole // big_size}{big}" + (f"{rest}{small}" if rest else "")
    return f"{whole}s"
