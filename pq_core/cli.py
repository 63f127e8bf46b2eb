"""`pq`: produce, consume, manage and repair a queue from the shell.

Argument parsing and printing only; every action is a call on pq_core's public API.
Any error a user can cause is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import pq_core
from pq_core.model import Item, Status, parse_duration

EXIT_ERROR = 2  # a usage or store error
EXIT_EMPTY = 1  # `pq get` found nothing ready
_ERROR_TAIL = 2000


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:  # everything after `--` is the worker's command, untouched
        at = argv.index("--")
        argv, cmd = argv[:at], argv[at + 1 :]
    args = _parser().parse_args(argv)
    args.cmd = cmd
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except (pq_core.QueueError, ValueError, TypeError, OSError) as exc:
        print(f"pq: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, KeyError) or len(exc.args) != 1 else str(exc.args[0])
    return " ".join(text.split()) or type(exc).__name__


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pq", description="A persistent job queue on SQLite.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("db", metavar="DB", help="the store: a SQLite file or a postgresql:// URL")
        p.add_argument("--queue", "-q", default="default", help="named queue (default: default)")
        p.add_argument(
            "--durability", choices=("full", "normal"), default="full", help=argparse.SUPPRESS
        )
        p.set_defaults(run=run)
        return p

    p = command("put", _put, "add a job (the payload argument, or one job per stdin line)")
    p.add_argument("payload", nargs="?", help="the payload; omit to read one job per stdin line")
    p.add_argument("--priority", type=int, default=0, help="higher runs first")
    p.add_argument("--delay", default="0", help="run no sooner than this (90s, 5m, 1h, 7d)")
    p.add_argument("--max-attempts", type=int, default=None)
    p.add_argument("--dedup-key", default=None, help="no second live job with this key")
    p.add_argument("--json", action="store_true", help="the payload is JSON; store it decoded")

    p = command("get", _get, "claim one job and print it as JSON (exit 1 when none is ready)")
    p.add_argument("--lease", default=None, help="lease length (default 5m)")
    p.add_argument("--timeout", default=None, help="wait this long for a job")

    p = command("done", _done, "mark a claimed job done")
    p.add_argument("id", type=int)
    p.add_argument("--token", help="the claim token `pq get` printed; omit to force by id")

    p = command("fail", _fail, "give a claimed job back (retried later, or dead when exhausted)")
    p.add_argument("id", type=int)
    p.add_argument("--token", required=True, help="the claim token `pq get` printed")
    p.add_argument("--error", default=None)

    p = command("stats", _stats, "counts per status per queue")
    p.add_argument("--json", action="store_true")

    p = command("ls", _ls, "list jobs, newest first")
    p.add_argument("--status", "-s", default=None, help="ready, in_progress, done or dead")
    p.add_argument("--all-queues", action="store_true")
    p.add_argument("--search", default=None, help="text in the payload, error or worker")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("show", _show, "one job with its history")
    p.add_argument("id", type=int)

    p = command("requeue", _requeue, "put jobs back to ready")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p.add_argument("--keep-attempts", action="store_true", help="do not reset attempts")

    p = command("rm", _rm, "delete jobs for good")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")

    p = command("purge", _purge, "delete old jobs of one status")
    p.add_argument("--status", "-s", default="done")
    p.add_argument("--older-than", default="7d", help="age since last change (default 7d)")
    p.add_argument("--all-queues", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="only count them")

    p = command("events", _events, "manager and operator activity, newest first")
    p.add_argument("--limit", type=int, default=20)

    command("workers", _workers, "registered consumers and managers")

    p = command("manager", _manager, "take back crashed and expired jobs, until SIGTERM")
    p.add_argument("--lease-timeout", default=None, help="also take back jobs silent this long")
    p.add_argument("--max-attempts", type=int, default=None, help="cap on attempts per job")
    p.add_argument("--interval", default="5s", help="time between sweeps (default 5s)")
    p.add_argument("--once", action="store_true", help="one sweep, print what it did")

    p = command(
        "worker", _worker, "`pq worker DB -- CMD ARGS`: run CMD once per job, payload on stdin"
    )
    p.add_argument("--lease", default="5m", help="lease per job, kept alive while CMD runs")
    p.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs")
    p.add_argument("--exit-when-empty", action="store_true", help="stop when nothing is ready")
    return parser


def _open(args: argparse.Namespace, read_only: bool = False) -> pq_core.Queue:
    is_url = args.db.startswith(("postgresql://", "postgres://"))
    if read_only and not is_url and not os.path.exists(args.db):
        raise pq_core.StoreNotFound(f"{os.path.abspath(args.db)}: no such store")
    return pq_core.open(args.db, queue=args.queue, durability=args.durability, read_only=read_only)


# -- producer ---------------------------------------------------------------------------------


def _put(args: argparse.Namespace) -> int:
    q = _open(args)
    options = {
        "priority": args.priority,
        "delay": args.delay,
        "max_attempts": args.max_attempts,
    }
    decode = json.loads if args.json else (lambda text: text)
    if args.payload is not None:
        print(q.put(decode(args.payload), dedup_key=args.dedup_key, **options))
        return 0
    if args.dedup_key is not None:
        raise ValueError("--dedup-key needs a single payload argument, not stdin")
    lines = [line.rstrip("\n") for line in sys.stdin]
    payloads = [decode(line) for line in lines if line.strip()]
    for job_id in q.put_many(payloads, **options):
        print(job_id)
    return 0


# -- consumer ---------------------------------------------------------------------------------


def _get(args: argparse.Namespace) -> int:
    q = _open(args)
    item = q.get(args.timeout, lease=args.lease)
    if item is None:
        print(f"pq: no job ready in queue {args.queue!r}", file=sys.stderr)
        return EXIT_EMPTY
    print(json.dumps(_item_json(item, with_token=True)))
    return 0


def _held(q: pq_core.Queue, job_id: int, token: str) -> Item:
    return dataclasses.replace(q.item(job_id), token=token)


def _done(args: argparse.Namespace) -> int:
    q = _open(args)
    if args.token is None:
        q.update_item_status(args.id, Status.DONE)
    else:
        q.done(_held(q, args.id, args.token))
    return 0


def _fail(args: argparse.Namespace) -> int:
    q = _open(args)
    status = q.fail(_held(q, args.id, args.token), error=args.error)
    print(status.value)
    return 0


def _worker(args: argparse.Namespace) -> int:
    cmd = args.cmd
    if not cmd:
        raise ValueError("worker needs a command: pq worker DB -- CMD ARGS")
    q = _open(args)
    lease = parse_duration(args.lease, "--lease")
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: object) -> None:
        if stopping.is_set() and child:  # a second signal reaches the running command
            child[0].send_signal(signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    handled = 0
    while not stopping.is_set():
        if args.max_jobs is not None and handled >= args.max_jobs:
            break
        item = q.get(timeout=0.5, lease=lease)
        if item is None:
            if args.exit_when_empty:
                break
            continue
        handled += 1
        _run_job(q, item, cmd, lease, child)
    q.close()
    return 0


def _run_job(
    q: pq_core.Queue,
    item: Item,
    cmd: list[str],
    lease: float,
    child: list[subprocess.Popen[bytes]],
) -> None:
    env = dict(os.environ, PQ_JOB_ID=str(item.id), PQ_QUEUE=item.queue)
    env["PQ_ATTEMPT"] = str(item.attempts)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        q.fail(item, error=f"cannot run {cmd[0]}: {exc.strerror}")
        raise
    child[:] = [proc]
    finished = threading.Event()
    lost = threading.Event()

    def keep_alive() -> None:
        current = item
        while not finished.wait(max(lease / 3, 0.05)):
            try:
                current = q.heartbeat(current, lease=lease)
            except pq_core.LeaseLost:
                lost.set()
                return
            except pq_core.QueueError:
                pass  # a busy store: try again at the next beat

    beat = threading.Thread(target=keep_alive, daemon=True)
    beat.start()
    _, err = proc.communicate(_stdin_bytes(item.payload))
    finished.set()
    beat.join()
    child.clear()
    try:
        if proc.returncode == 0:
            q.done(item)
        else:
            tail = err.decode("utf-8", "replace")[-_ERROR_TAIL:].strip()
            q.fail(item, error=tail or f"{cmd[0]} exited with status {proc.returncode}")
    except pq_core.LeaseLost as exc:
        print(f"pq: {_one_line(exc)}", file=sys.stderr)


def _stdin_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return json.dumps(payload).encode()


# -- operator ---------------------------------------------------------------------------------


def _stats(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    stats = q.stats()
    if args.json:
        out = {
            name: {
                **{s.value: n for s, n in qs.counts.items()},
                "oldest_ready_age": qs.oldest_ready_age,
                "done_last_minute": qs.done_per_minute[-1],
            }
            for name, qs in stats.queues.items()
        }
        print(json.dumps(out, indent=2))
        return 0
    header = ("queue", "ready", "in_progress", "done", "dead", "oldest ready")
    rows = [
        (name, *(str(qs.counts[s]) for s in Status), _age(qs.oldest_ready_age))
        for name, qs in stats.queues.items()
    ]
    _table(header, rows)
    return 0


def _ls(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    items = q.items(
        args.status,
        limit=args.limit,
        offset=args.offset,
        queue=None if args.all_queues else args.queue,
        search=args.search,
    )
    if args.json:
        for item in items:
            print(json.dumps(_item_json(item)))
        return 0
    now = datetime.now(UTC)
    rows = [
        (
            str(i.id),
            i.queue,
            i.status.value,
            _age((now - i.created_at).total_seconds()),
            f"{i.attempts}/{i.max_attempts}",
            str(i.priority),
            _preview(i.payload),
            _preview(i.last_error or ""),
        )
        for i in items
    ]
    _table(("id", "queue", "status", "age", "tries", "prio", "payload", "last error"), rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    item = q.item(args.id)
    data = _item_json(item)
    data["history"] = [
        {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "detail": e.detail}
        for e in item.history
    ]
    print(json.dumps(data, indent=2))
    return 0


def _requeue(args: argparse.Namespace) -> int:
    n = _open(args).requeue(args.ids, reset_attempts=not args.keep_attempts)
    print(f"requeued {n} job(s)")
    return 0


def _rm(args: argparse.Namespace) -> int:
    n = _open(args).delete(args.ids)
    print(f"deleted {n} job(s)")
    return 0


def _purge(args: argparse.Namespace) -> int:
    q = _open(args, read_only=args.dry_run)
    queue = None if args.all_queues else args.queue
    n = q.purge(args.older_than, args.status, queue=queue, dry_run=args.dry_run)
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} {n} job(s)")
    return 0


def _events(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    rows = [
        (e.at.strftime("%Y-%m-%d %H:%M:%S"), e.queue, e.kind, e.actor, e.detail)
        for e in q.events(args.limit)
    ]
    _table(("at (UTC)", "queue", "kind", "who", "what"), rows)
    return 0


def _workers(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    now = datetime.now(UTC)
    rows = [
        (
            w.kind,
            w.id,
            w.queue,
            "alive" if w.alive else "gone",
            _age((now - w.last_seen).total_seconds()) + " ago",
        )
        for w in q.workers()
    ]
    _table(("kind", "worker", "queue", "state", "last seen"), rows)
    return 0


def _manager(args: argparse.Namespace) -> int:
    q = _open(args)
    manager = pq_core.Manager(
        q,
        lease_timeout=args.lease_timeout,
        max_attempts=args.max_attempts,
        interval=args.interval,
    )
    if args.once:
        report = manager.sweep()
        print(
            f"requeued {report.requeued}, dead-lettered {report.dead}, "
            f"crashed workers {report.crashed_workers}"
        )
        return 0
    manager.run()
    return 0


# -- printing ---------------------------------------------------------------------------------


def _item_json(item: Item, with_token: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in dataclasses.fields(item):
        if field.name in ("history", "token"):
            continue
        value = getattr(item, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Status):
            value = value.value
        elif isinstance(value, bytes):
            data["payload_base64"] = True
            value = base64.b64encode(value).decode()
        data[field.name] = value
    if with_token:
        data["token"] = item.token
    return data


def _preview(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value) if isinstance(value, bytes) else None
    if text is None:
        text = json.dumps(value, ensure_ascii=False)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= width else text[: width - 1] + "…"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
