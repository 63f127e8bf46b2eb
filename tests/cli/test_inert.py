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
QUEUE = "[bold red]evil[/] queue ✓"  # queue names must be printable: markup is all one can try


def raw_controls(text: str) -> list[str]:
    return sorted({ch for ch in text if not (ch.isprintable() or ch == "\n")})


def test_control_characters_in_every_field_reach_no_output_raw(db: str) -> None:
    q = pq_core.open(db, queue=QUEUE, max_attempts=1)
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
        run("ls", db, "-q", QUEUE)[0],
        run("ls", db, "--all-queues", "--search", "evil")[0],
        run("show", db, str(dead))[0],
        run("show", db, str(held))[0],
        run("events", db)[0],
        run("workers", db)[0],
    ]
    for shown in human[1:-1]:  # stats and workers show no field a producer wrote
        escapes = ("\\x1b]52;c;SGVsbG8=\\x07", "\\\\x1b]52", "\\u001b]52")
        assert any(e in shown for e in escapes), shown
    assert "\\u202e" in run("show", db, str(dead))[0]

    json_out = [
        run("stats", db, "--json")[0],
        run("ls", db, "-q", QUEUE, "--json")[0],
        run("show", db, str(dead), "--json")[0],
        run("events", db, "--json")[0],
        run("workers", db, "--json")[0],
    ]
    stats = json.loads(json_out[0])
    assert QUEUE in stats  # the queue name comes back exactly
    listed = [json.loads(line) for line in json_out[1].splitlines()]
    assert {item["payload"] if isinstance(item["payload"], str) else "" for item in listed} >= {
        EVIL
    }
    shown = json.loads(json_out[2])
    assert shown["queue"] == QUEUE and shown["dedup_key"] == EVIL and shown["last_error"] == EVIL
    events = [json.loads(line) for line in json_out[3].splitlines()]
    assert EVIL in {e["actor"] for e in events} and QUEUE in {e["queue"] for e in events}

    # The consumer's and the operator's commands, and the error messages that quote input.
    out, _ = run("put", db, "-q", QUEUE, EVIL)
    got = json.loads(run("get", db, "-q", QUEUE)[0])
    assert got["payload"] == EVIL and got["queue"] == QUEUE
    run("fail", db, str(got["id"]), "--token", got["token"], "--error", EVIL, "-q", QUEUE)
    run("done", db, str(claim.id), "--token", claim.token)
    run("get", db, "-q", QUEUE + " empty")  # "no job ready in queue …": exit 1
    _, refused = run("put", db, "-q", EVIL, "x")  # a queue name with controls: one inert line
    assert "control characters" in refused and refused.count("\n") == 1
    run("requeue", db, str(ready), "-q", QUEUE)
    run("ls", db, "--status", EVIL)  # unknown status: the message quotes it
    run("purge", db, "--older-than", EVIL)
    run("manager", db, "--once", "-q", QUEUE)
    run("metrics", db)
    _, logged = run("worker", db, "-q", QUEUE, "--exit-when-empty", "--", sys.executable, "-c", "")
    assert "queue=" in logged
