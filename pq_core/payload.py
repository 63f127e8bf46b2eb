"""Payloads: what may be stored, and how it is kept (as text, bytes or JSON text).

Everything is checked before a byte is written: the type, the nesting of JSON (at most
`MAX_DEPTH` lists and dicts deep, so that every consumer can read back what was stored), valid
text (no lone surrogates), and the size.
"""

from __future__ import annotations

import json
from typing import Any

from pq_core.errors import PayloadError, PayloadTooLarge
from pq_core.model import MAX_DEPTH

Encoded = tuple[str, str | bytes]  # (encoding, stored value): "str", "bytes" or "json"


def encode(payload: Any, max_bytes: int) -> Encoded:
    """The stored form of a payload, or PayloadError / PayloadTooLarge saying why not."""
    if isinstance(payload, str):
        encoding, text = "str", payload
    elif isinstance(payload, bytes | bytearray | memoryview):
        value = bytes(payload)
        _check_size(len(value), max_bytes)
        return "bytes", value
    else:
        _check_depth(payload)
        try:
            text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise PayloadError(
                f"payload of type {type(payload).__name__} is not str, bytes or "
                f"JSON-serialisable: {exc}"
            ) from None
        encoding = "json"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise PayloadError(
            f"payload is not valid text: a lone surrogate {text[exc.start]!r} at character "
            f"{exc.start}; store bytes instead"
        ) from None
    _check_size(size, max_bytes)
    return encoding, text


def decode(encoding: str, value: str | bytes) -> Any:
    """The payload as it was put."""
    if encoding == "json":
        return json.loads(value)
    if encoding == "bytes":
        return value if isinstance(value, bytes) else bytes(value, "utf-8")
    return value if isinstance(value, str) else bytes(value).decode("utf-8")


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(f"payload is {size} bytes, over max_payload_bytes={max_bytes}")


def _check_depth(payload: Any) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, without recursion (a self-containing list
    fails here too, as infinitely deep)."""
    level: list[Any] = [payload]
    for depth in range(MAX_DEPTH + 1):
        deeper = []
        for value in level:
            if isinstance(value, dict):
                deeper.extend(value.values())
            elif isinstance(value, list | tuple):
                deeper.extend(value)
        if not deeper:
            return
        if depth == MAX_DEPTH:
            break
        level = deeper
    raise PayloadError(
        f"payload is nested more than {MAX_DEPTH} lists or dicts deep (or contains itself)"
    )
