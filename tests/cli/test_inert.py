"""Nothing `pq` prints can drive a terminal: every field a producer, consumer or operator wrote
is shown with its control characters as visible escapes, or JSON-escaped with --json."""

from __future__ import annotations

import json
import sys

import pq_core

from .conftest import pq

# OSC 52 writes the clipboard, CSI 2J clears the screen, 0x9b is an 8-bit CSI, U+202E reverses
# the text after it, BEL rings and ends the OSC.
EVIL = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\x9b31m\u202eevil\x7f"


def raw_controls(text: str) -> list[str]:
    return sorted({ch for ch in text if not (ch.isprintable() or ch == "\n")})


def test_control_characters_in_every_field_reach_no_output_raw(db: str) -> None:
    q = pq_core.open(db, queue=EVIL, max_attempts=1)
    dead = q.put(EVIL, dedup_key=EVIL)
    q.fail(q.get(), error=EVIL)  # dead: its error and the event's detail carry EVIL
    held = q.put({"k": EVIL})
    claim = q.get()
    ready = q.put(EVIL)
    q.requeue([dead], actor=EVIL)
    q.fail(q.get(), error=EVIL)
    q.put(EVIL.encode())

    def run(*args: str, stdin: str | None = None) -> tuple[str, str]:
        result = pq(*args, stdin=stdin, check=False)
        assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr, result.stderr
        out = result.stdout + result.stderr
        assert raw_controls(out) == [], f"pq {args[0]} printed {raw_controls(out)}: {out!r}"
        return result.stdout, result.stderr

    human = [
        run("stats", db)[0],
        run("ls", db, "-q", EVIL)[0],
        run("ls", db, "--all-queues", "--search", "evil")[0],
        run("show", db, str(dead))[0],
        run("show", db, str(held))[0],
        run("events", db)[0],
        run("workers", db)[0],
    ]
    for shown in human:
        assert "\\x1b]52;c;SGVsbG8=\\x07" in shown or "\\\\x1b]52" in shown, shown
    assert "\\u202e" in run("show", db, str(dead))[0]

    json_out = [
        run("stats", db, "--json")[0],
        run("ls", db, "-q", EVIL, "--json")[0],
        run("show", db, str(dead), "--json")[0],
        run("events", db, "--json")[0],
        run("workers", db, "--json")[0],
    ]
    stats = json.loads(json_out[0])
    assert EVIL in stats  # the queue name comes back exactly
    listed = [json.loads(line) for line in json_out[1].splitlines()]
    assert {item["payload"] if isinstance(item["payload"], str) else "" for item in listed} >= {
        EVIL
    }
    shown = json.loads(json_out[2])
    assert shown["queue"] == EVIL and shown["dedup_key"] == EVIL and shown["last_error"] == EVIL
    events = [json.loads(line) for line in json_out[3].splitlines()]
    assert EVIL in {e["actor"] for e in events} and EVIL in {e["queue"] for e in events}

    # The consumer's and the operator's commands, and the error messages that quote input.
    out, _ = run("put", db, "-q", EVIL, EVIL)
    got = json.loads(run("get", db, "-q", EVIL)[0])
    assert got["payload"] == EVIL and got["queue"] == EVIL
    run("fail", db, str(got["id"]), "--token", got["token"], "--error", EVIL, "-q", EVIL)
    run("done", db, str(claim.id), "--token", claim.token)
    run("get", db, "-q", EVIL + "empty")  # "no job ready in queue …": exit 1, quoted inert
    run("requeue", db, str(ready), "-q", EVIL)
    run("ls", db, "--status", EVIL)  # unknown status: the message quotes it
    run("purge", db, "--older-than", EVIL)
    run("manager", db, "--once", "-q", EVIL)
    run("metrics", db)
    _, logged = run("worker", db, "-q", EVIL, "--exit-when-empty", "--", sys.executable, "-c", "")
    assert "queue=" in logged and "\\u001b]52" in logged
