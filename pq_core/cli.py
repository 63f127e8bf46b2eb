"""`pq`: produce, consume, manage and repair a queue from the shell.

Argument parsing and printing only; every action is a call on pq_core's public API (the
worker's process supervision lives in `pq_core.worker`, the Prometheus exposition in
`pq_core.metrics`). Any error a user can cause is one line on stderr and a non-zero exit,
never a traceback. Everything printed goes through `display.inert` / `display.inert_json`, so
no byte a job or a producer wrote can drive the operator's terminal.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import pq_core
from pq_core.display import age, count, duration, inert, inert_json
from pq_core.model import Item, Status, parse_duration

DISTRIBUTION = "pq-jobs"  # the name on the package index (`pq` there is another project)
EXIT_ERROR = 2  # a usage or store error
EXIT_EMPTY = 1  # `pq get` found nothing ready
_LIVE = (Status.READY, Status.IN_PROGRESS)  # purging these throws away work not yet done
_FOLLOW_EVERY = 0.5  # seconds between reads of `pq events --follow`
_STOPS = (signal.SIGINT, signal.SIGTERM)  # what ends `pq events --follow`, with status 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if argv[:1] == ["worker"] and "--" in argv:  # the worker's command, untouched
        at = argv.index("--")
        argv, cmd = argv[:at], argv[at + 1 :]
    args = _parser().parse_args(argv)
    args.cmd = cmd
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except (pq_core.QueueError, ValueError, OSError) as exc:
        error(one_line(exc))
        return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, KeyError) or len(exc.args) != 1 else str(exc.args[0])
    return " ".join(text.split()) or type(exc).__name__


def error(message: str) -> None:
    """One line on stderr, inert: a message may quote a queue name or a payload."""
    print(f"pq: {inert(message)}", file=sys.stderr, flush=True)


def log(who: str, message: str) -> None:
    """A timestamped line on stderr for the long-running commands (manager, worker, metrics)."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{at} pq {who}: {inert(message)}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    # The reader went away (`pq ls | head`): point stdout at /dev/null so the interpreter's
    # final flush does not complain about the broken pipe.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {inert(message)} (see {self.prog} --help)\n")


class _Command(_Parser):
    """A subcommand's parser: options and arguments in any order, so
    `pq put DB --priority 5 PAYLOAD` works as well as `pq put DB PAYLOAD --priority 5`."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def version() -> str:
    """The installed distribution's version; a checkout that was never installed says so."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


_WORKER_HELP = """\
The command runs once per job, with the payload on its standard input (str as UTF-8, bytes as
they are, anything else as JSON). Exit 0 marks the job done; any other exit fails it (retried
with back-off, dead after its max attempts) with the last few KiB of the command's stderr as
the job's error. The command's stdout and stderr pass through as it writes them.

The command gets these environment variables:
  PQ_JOB_ID         the job's id
  PQ_QUEUE          the queue it came from
  PQ_ATTEMPT        this attempt's number, from 1
  PQ_MAX_ATTEMPTS   the attempts the job may have

The command runs in its own session and process group: Ctrl-C in the terminal reaches the
worker, not the command; when the worker ends, even by kill -9, the command and whatever it
started in its process group are killed (on Linux), and so is anything the command leaves
running when it exits. The job's lease is renewed while the command runs.

The first SIGINT or SIGTERM stops claiming: the jobs in hand finish (for up to --grace) and
are acked, then the worker exits 0. A second signal, or the end of the grace period, stops the
commands (SIGTERM to their process groups, SIGKILL 5s later) and puts their jobs back to ready
without counting the attempt; the worker then exits 130 (SIGINT) or 143 (SIGTERM).

One line per job goes to stderr (time, job, queue, attempt, outcome, duration); --quiet
leaves them out. A command that cannot be run is an error (exit 2) before any job is claimed.
"""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pq",
        description="A persistent job queue on SQLite (or PostgreSQL).",
        epilog="Durations are seconds or a number with a unit: 90s, 5m, 1h, 7d.",
    )
    parser.add_argument("--version", action="version", version=f"pq {version()}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Command)

    def command(name: str, run: Any, help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, **kw)
        p.add_argument("db", metavar="DB", help="the store: a SQLite file or a postgresql:// URL")
        p.add_argument(
            "--queue",
            "-q",
            default=None,
            help="one named queue only (reads without it show every queue; puts and claims "
            "use 'default')",
        )
        p.add_argument(
            "--durability", choices=("full", "normal"), default="full", help=argparse.SUPPRESS
        )
        p.set_defaults(run=run)
        return p

    def json_flag(p: argparse.ArgumentParser, lines: bool = False) -> None:
        what = "one JSON object per line" if lines else "print JSON"
        p.add_argument("--json", action="store_true", help=what)

    command("init", _init, "create a store (every other command but put refuses a missing one)")

    p = command("put", _put, "add a job (the payload argument, or one job per stdin line)")
    p.add_argument("payload", nargs="?", help="the payload; omit to read one job per stdin line")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--delay", default="0", metavar="DURATION", help="run no sooner than this")
    p.add_argument("--max-attempts", type=int, default=None, metavar="N")
    p.add_argument("--dedup-key", default=None, help="no second live job with this key")
    p.add_argument("--json", action="store_true", help="the payload is JSON; store it decoded")

    p = command("get", _get, "claim one job and print it as JSON (exit 1 when none is ready)")
    p.add_argument("--lease", default=None, metavar="DURATION", help="lease length (default 5m)")
    p.add_argument("--timeout", default=None, metavar="DURATION", help="wait this long for one")

    p = command("done", _done, "mark a claimed job done")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--token", help="the claim token `pq get` printed; omit to force by id")

    p = command("fail", _fail, "give a claimed job back (retried later, or dead when exhausted)")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--token", required=True, help="the claim token `pq get` printed")
    p.add_argument("--error", default=None, help="what went wrong, kept with the job")

    p = command("stats", _stats, "counts per status per queue")
    json_flag(p)

    p = command("ls", _ls, "list jobs, newest first (of every queue, or of --queue)")
    p.add_argument("--status", "-s", default=None, help="ready, in_progress, done or dead")
    p.add_argument("--all-queues", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument("--search", default=None, help="text in the payload, error or worker")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N")
    json_flag(p, lines=True)

    p = command("show", _show, "one job with its history")
    p.add_argument("id", type=int, metavar="ID")
    json_flag(p)

    p = command("requeue", _requeue, "put jobs back to ready")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p.add_argument("--keep-attempts", action="store_true", help="do not reset attempts")

    p = command("rm", _rm, "delete jobs for good")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")

    p = command("purge", _purge, "delete old jobs of one status (in every queue, or --queue)")
    p.add_argument("--status", "-s", default="done", help="done (default), dead, ready, …")
    p.add_argument(
        "--older-than", default="7d", metavar="DURATION", help="since last change (default 7d)"
    )
    p.add_argument("--all-queues", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument("--dry-run", action="store_true", help="only count them")
    p.add_argument(
        "--force", action="store_true", help="needed to purge live jobs (ready, in_progress)"
    )

    p = command("events", _events, "manager and operator activity, newest first")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    p.add_argument(
        "--follow", "-f", action="store_true", help="the last N oldest first, then new ones live"
    )
    json_flag(p, lines=True)

    p = command("workers", _workers, "registered consumers and managers")
    json_flag(p, lines=True)

    command("pause", _pause, "hand out no more jobs of --queue (default: default); puts go on")
    command("resume", _resume, "hand out the jobs of --queue (default: default) again")

    p = command(
        "check", _check, "run the store's integrity check and compare its counters with the jobs"
    )
    json_flag(p)

    p = command("manager", _manager, "take back crashed and expired jobs, until SIGTERM")
    p.add_argument(
        "--lease-timeout",
        default=None,
        metavar="DURATION",
        help="the longest lease any claim gets (claims asking more are capped)",
    )
    p.add_argument("--max-attempts", type=int, default=None, metavar="N", help="cap per job")
    p.add_argument("--interval", default="5s", metavar="DURATION", help="between sweeps (5s)")
    p.add_argument("--once", action="store_true", help="one sweep, print what it did, exit")

    p = command(
        "worker",
        _worker,
        "run a command (given after --) once per job, the payload on its stdin",
        epilog=_WORKER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="pq worker [options] DB -- CMD [ARGS ...]",
    )
    p.add_argument("--lease", default="5m", metavar="DURATION", help="lease per job (5m)")
    p.add_argument(
        "--timeout", default=None, metavar="DURATION", help="kill CMD and fail the job after this"
    )
    p.add_argument(
        "--grace",
        default="20s",
        metavar="DURATION",
        help="after a stop signal, time the jobs in hand get to finish (20s)",
    )
    p.add_argument(
        "--concurrency", "-c", type=int, default=1, metavar="N", help="run up to N jobs at once (1)"
    )
    p.add_argument("--max-jobs", type=int, default=None, metavar="N", help="stop after N jobs")
    p.add_argument("--exit-when-empty", action="store_true", help="stop when nothing is ready")
    p.add_argument("--quiet", action="store_true", help="no log line per job")

    p = command("metrics", _metrics, "the store's state in the Prometheus text format")
    p.add_argument(
        "--listen",
        default=None,
        metavar="[HOST]:PORT",
        help="serve it at http://HOST:PORT/metrics (host 127.0.0.1 when left out)",
    )
    return parser


def _open(args: argparse.Namespace, read_only: bool = False, create: bool = False) -> pq_core.Queue:
    """The store, never created by accident: only `put` and `init` make a missing one."""
    return pq_core.open(
        args.db,
        queue=args.queue or "default",
        durability=args.durability,
        read_only=read_only,
        create=create and not read_only,
    )


def _location(q: pq_core.Queue) -> str:
    """Where the store is, safe to print (a URL's password removed)."""
    return getattr(q, "location", None) or q.store.location


# -- producer ---------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    q = _open(args, create=True)
    print(f"ready: {inert(_location(q))}")
    q.close()
    return 0


def _put(args: argparse.Namespace) -> int:
    q = _open(args, create=True)
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
    # This process exits with the job in hand: only its lease says when it comes back.
    item = q.get(args.timeout, lease=args.lease, detach=True)
    if item is None:
        error(f"no job ready in queue {q.name!r}")
        return EXIT_EMPTY
    print(inert_json(_item_json(item, with_token=True)))
    return 0


def _held(q: pq_core.Queue, args: argparse.Namespace) -> Item:
    return dataclasses.replace(q.item(args.id, queue=args.queue), token=args.token)


def _done(args: argparse.Namespace) -> int:
    q = _open(args)
    if args.token is None:
        q.item(args.id, queue=args.queue)  # a job of another queue is refused
        q.update_item_status(args.id, Status.DONE)
    else:
        q.done(_held(q, args))
    return 0


def _fail(args: argparse.Namespace) -> int:
    q = _open(args)
    status = q.fail(_held(q, args), error=args.error)
    print(status.value)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from pq_core import worker

    if not args.cmd:
        raise ValueError("worker needs a command: pq worker DB [options] -- CMD ARGS")
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, not {args.concurrency}")
    if args.max_jobs is not None and args.max_jobs < 1:
        raise ValueError(f"--max-jobs must be at least 1, not {args.max_jobs}")
    options = worker.Options(
        lease=parse_duration(args.lease, "--lease"),
        timeout=None if args.timeout is None else parse_duration(args.timeout, "--timeout"),
        grace=parse_duration(args.grace, "--grace"),
        concurrency=args.concurrency,
        max_jobs=args.max_jobs,
        exit_when_empty=args.exit_when_empty,
        quiet=args.quiet,
    )
    if options.lease <= 0:
        raise ValueError("--lease must be more than 0 seconds")
    if options.timeout is not None and options.timeout <= 0:
        raise ValueError("--timeout must be more than 0 seconds")
    program = worker.resolve(args.cmd[0])  # cannot run it: an error before any claim
    q = _open(args)
    try:
        return worker.Supervisor(q, [program, *args.cmd[1:]], args.cmd[0], options).run()
    finally:
        q.close()


# -- operator ---------------------------------------------------------------------------------


def _stats(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    stats = q.stats()
    queues = stats.queues if args.queue is None else {args.queue: stats[args.queue]}
    if args.json:
        print(inert_json({n: _queue_stats_json(qs) for n, qs in queues.items()}, indent=2))
        return 0
    with_scheduled = True
    with_paused = any(qs.paused for qs in queues.values())
    if not queues:
        print(f"no jobs in {inert(_location(q))}")
        return 0
    header = ["queue", "ready", "in_progress", "done", "dead", "oldest ready", "done/min"]
    if with_scheduled:
        header.insert(2, "scheduled")
    if with_paused:
        header.append("paused")
    rows = []
    for name, qs in queues.items():
        row = [inert(name), *(count(qs.counts[s]) for s in Status)]
        row += [age(qs.oldest_ready_age), count(_last_whole_minute(qs.done_per_minute))]
        if with_scheduled:
            row[1] = count(qs.available)  # ready now; the scheduled ones have a column
            row.insert(2, count(qs.scheduled))
        if with_paused:
            row.append("paused" if getattr(qs, "paused", False) else "-")
        rows.append(row)
    _table(header, rows, numeric=range(1, len(header) - with_paused))
    return 0


def _scheduled(qs: Any) -> int | None:
    return getattr(qs, "scheduled", None)  # counted by the core from this wave on


def _last_whole_minute(per_minute: Sequence[int]) -> int:
    """The last entry is the minute in progress; the one before it is the last whole minute."""
    return per_minute[-2] if len(per_minute) >= 2 else 0


def _queue_stats_json(qs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {s.value: n for s, n in qs.counts.items()}
    if _scheduled(qs) is not None:
        out["scheduled"] = _scheduled(qs)
    out["oldest_ready_age"] = qs.oldest_ready_age
    out["done_last_minute"] = _last_whole_minute(qs.done_per_minute)
    out["done_per_minute"] = list(qs.done_per_minute)  # oldest first; the last one is now
    failed = getattr(qs, "failed_per_minute", None)
    if failed is not None:
        out["failed_last_minute"] = _last_whole_minute(failed)
        out["failed_per_minute"] = list(failed)
    if getattr(qs, "paused", None) is not None:
        out["paused"] = qs.paused
    return out


def _ls(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, not {args.limit}")
    q = _open(args, read_only=True)
    items = q.items(
        args.status,
        limit=args.limit + 1,  # one more, to tell whether there are more
        offset=args.offset,
        queue=args.queue,
        search=args.search,
    )
    more = len(items) > args.limit
    items = items[: args.limit]
    if args.json:
        for item in items:
            print(inert_json(_item_json(item)))
    else:
        now = datetime.now(UTC)
        rows = [
            (
                str(i.id),
                inert(i.queue),
                i.status.value,
                age((now - i.created_at).total_seconds()),
                f"{i.attempts}/{i.max_attempts}",
                str(i.priority),
                _preview(i.payload),
                _preview(i.last_error or ""),
            )
            for i in items
        ]
        header = ("id", "queue", "status", "age", "tries", "prio", "payload", "last error")
        _table(header, rows, numeric=(0, 5))
    if more:
        sys.stdout.flush()  # the note comes after the rows on a terminal
        error(
            f"more jobs after these {count(len(items))}: "
            f"--offset {args.offset + len(items)} shows the next ones, --limit shows more"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    item = q.item(args.id, queue=args.queue)
    if args.json:
        data = _item_json(item)
        data["history"] = [_event_json(e) for e in item.history]
        print(inert_json(data, indent=2))
        return 0
    now = datetime.now(UTC)
    fields = [
        ("job", str(item.id)),
        ("queue", inert(item.queue)),
        ("status", item.status.value),
        ("attempts", f"{item.attempts}/{item.max_attempts}"),
        ("priority", str(item.priority)),
        ("created", _when(item.created_at, now)),
        ("updated", _when(item.updated_at, now)),
        ("available", _when(item.available_at, now)),
        ("lease until", _when(item.lease_expires_at, now)),
        ("worker", inert(item.worker or "-")),
        ("dedup key", inert(item.dedup_key or "-")),
        ("last error", inert(item.last_error or "-")),
        ("payload", _preview(item.payload, width=None)),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")
    if item.history:
        print()
        rows = [(at, kind, who, what) for at, _, kind, who, what in map(_event_row, item.history)]
        _table(("at (UTC)", "kind", "who", "what"), rows)
    return 0


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    seconds = (now - at).total_seconds()
    relative = f"{age(seconds)} ago" if seconds >= 0 else f"in {age(-seconds)}"
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')} UTC ({relative})"


def _requeue(args: argparse.Namespace) -> int:
    q = _open(args)
    n = q.requeue(args.ids, reset_attempts=not args.keep_attempts, queue=args.queue)
    print(f"requeued {count(n, 'job')}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    n = _open(args).delete(args.ids, queue=args.queue)
    print(f"deleted {count(n, 'job')}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    status = Status.parse(args.status)
    older = parse_duration(args.older_than, "older_than")
    if status in _LIVE and not args.force and not args.dry_run:
        raise ValueError(
            f"{status.value} jobs are live work not yet done: purging them needs --force "
            "(or count them first with --dry-run)"
        )
    if args.all_queues and args.queue is not None:
        raise ValueError("--all-queues and --queue ask for different things: give one")
    q = _open(args, read_only=args.dry_run)
    n = q.purge(older, status, queue=args.queue, dry_run=args.dry_run)
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} {count(n, status.value + ' job')} older than {duration(older)}")
    return 0


def _events(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, not {args.limit}")
    q = _open(args, read_only=True)
    events = q.events(args.limit, queue=args.queue)
    if args.follow:
        return _follow(q, list(reversed(events)), args.json, args.queue)
    if args.json:
        for e in events:
            print(inert_json(_event_json(e)))
        return 0
    _table(("at (UTC)", "queue", "kind", "who", "what"), [_event_row(e) for e in events])
    return 0


def _follow(q: pq_core.Queue, first: list[pq_core.Event], as_json: bool, queue: str | None) -> int:
    """Print events oldest first as they are recorded, until Ctrl-C or SIGTERM."""
    show: Callable[[pq_core.Event], str] = (
        (lambda e: inert_json(_event_json(e))) if as_json else (lambda e: "  ".join(_event_row(e)))
    )
    # Ctrl-C or SIGTERM only set a flag, looked at between reads: a signal never lands in the
    # middle of a store call (a KeyboardInterrupt there could leave the store half done).
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOPS}
    last = 0
    batch = first
    try:
        while True:
            for e in batch:
                print(show(e))
                last = max(last, e.id)
            sys.stdout.flush()
            if stop.wait(_FOLLOW_EVERY):  # events have no wake-up of their own: read again
                return 0  # Ctrl-C or SIGTERM is how one stops following
            batch = _events_after(q, last, queue)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _events_after(q: pq_core.Queue, last: int, queue: str | None) -> list[pq_core.Event]:
    """Every event newer than id `last`, oldest first (paging back if many came at once)."""
    page_size, offset, fresh = 200, 0, []
    while True:
        page = q.events(page_size, offset, queue=queue)
        newer = [e for e in page if e.id > last]
        fresh.extend(newer)
        if len(newer) < len(page) or len(page) < page_size:
            return sorted(fresh, key=lambda e: e.id)
        offset += page_size


def _event_row(e: pq_core.Event) -> tuple[str, str, str, str, str]:
    at = e.at.strftime("%Y-%m-%d %H:%M:%S")
    return (at, inert(e.queue), inert(e.kind), inert(e.actor), inert(e.detail))


def _workers(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    workers = [
        w
        for w in q.workers()
        if args.queue is None or w.kind != "consumer" or w.queue == args.queue
    ]
    if args.json:
        for w in workers:
            print(inert_json(_record_json(w)))
        return 0
    now = datetime.now(UTC)
    rows = [
        (
            inert(w.kind),
            inert(w.id),
            inert(w.queue),
            "alive" if w.alive else "gone",
            age((now - w.last_seen).total_seconds()) + " ago",
            ", ".join(str(j) for j in w.jobs[:5]) + (" …" if len(w.jobs) > 5 else "") or "-",
            str(w.done_last_minute),
        )
        for w in workers
    ]
    header = ("kind", "worker", "queue", "state", "last seen", "holds", "done/min")
    _table(header, rows, numeric=(6,))
    return 0


def _pause(args: argparse.Namespace) -> int:
    q = _open(args)
    changed = q.pause()
    print(f"paused {inert(q.name)}" if changed else f"{inert(q.name)} was paused already")
    return 0


def _resume(args: argparse.Namespace) -> int:
    q = _open(args)
    changed = q.resume()
    print(f"resumed {inert(q.name)}" if changed else f"{inert(q.name)} was not paused")
    return 0


EXIT_DAMAGED = 1  # `pq check` found problems


def _check(args: argparse.Namespace) -> int:
    q = _open(args, read_only=True)
    report = q.check()
    if args.json:
        print(inert_json({"ok": report.ok, "problems": list(report.problems)}))
    elif report.ok:
        print(f"ok: {inert(_location(q))}")
    else:
        for problem in report.problems:
            print(inert(problem))
    return 0 if report.ok else EXIT_DAMAGED


class _LoggedManager(pq_core.Manager):
    """The manager, saying on stderr what each sweep that changed something did."""

    def sweep(self) -> pq_core.SweepReport:
        report = super().sweep()
        if report.changed:
            log("manager", f"swept: {_sweep_text(report)}")
        return report


def _sweep_text(report: pq_core.SweepReport) -> str:
    return (
        f"requeued {count(report.requeued, 'job')}, dead-lettered {count(report.dead, 'job')}, "
        f"{count(report.crashed_workers, 'crashed worker')}"
    )


def _manager(args: argparse.Namespace) -> int:
    q = _open(args)
    manager = (pq_core.Manager if args.once else _LoggedManager)(
        q,
        lease_timeout=args.lease_timeout,
        max_attempts=args.max_attempts,
        interval=args.interval,
    )
    if args.once:  # for cron: what the sweep did goes to stdout
        print(_sweep_text(manager.sweep()))
        return 0
    every = f"a sweep every {duration(manager.interval)}"
    if manager.lease_timeout is not None:
        every += f", leases capped at {duration(manager.lease_timeout)}"
    log("manager", f"started on {_location(q)}: {every}")
    try:
        manager.run()
    finally:
        log("manager", "stopped")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from pq_core import metrics

    if args.listen is None:
        q = _open(args, read_only=True)
        sys.stdout.write(metrics.render(q, args.queue))
        return 0
    host, port = metrics.parse_listen(args.listen)
    q = _open(args, read_only=True)
    return metrics.serve(q, host, port, args.queue, log=lambda message: log("metrics", message))


# -- printing ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Status):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _record_json(record: Any) -> dict[str, Any]:
    """Any of the core's dataclasses (Worker, Event …) as a JSON object, field by field."""
    return {f.name: _jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _event_json(e: pq_core.Event) -> dict[str, Any]:
    return _record_json(e)


def _item_json(item: Item, with_token: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in dataclasses.fields(item):
        if field.name in ("history", "token"):
            continue
        value = getattr(item, field.name)
        if isinstance(value, bytes):
            data["payload_base64"] = True
            value = base64.b64encode(value).decode()
        data[field.name] = _jsonable(value)
    if with_token:
        data["token"] = item.token
    return data


def _preview(value: Any, width: int | None = 40) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    text = inert(text)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> None:
    """Columns padded to fit; `numeric` columns right-aligned. Cells must be inert already."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    sys.exit(main())
