"""`pq-tui STORE [--queue NAME] [--read-only] [--refresh SECONDS]`, `pq-tui --demo` and
`pq-tui --version`. STORE is a SQLite file or a postgresql:// URL."""

from __future__ import annotations

import argparse
import os
import sys
import time

import pq_core
from pq_core.errors import redact

URL_SCHEMES = ("postgresql://", "postgres://")
# user:password@ in a URL, and password=… in a URL's query or a keyword connection string


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pq-tui",
        description="Watch and repair a pq job store from the terminal.",
    )
    parser.add_argument("store", nargs="?", help="the store: a SQLite file, or a postgresql:// URL")
    parser.add_argument("--queue", help="show only this named queue (default: every queue)")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="open the store read-only: no requeue, delete or purge",
    )
    parser.add_argument(
        "--refresh",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (default 1)",
    )
    parser.add_argument("--version", action="version", version=f"pq-tui {_version()}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open a throwaway demo store with simulated producers, consumers and a manager",
    )
    args = parser.parse_args(argv)
    if args.demo and args.store:
        parser.error("--demo takes no store: it makes its own")
    if not args.demo and not args.store:
        parser.error("give a store (a SQLite file or a postgresql:// URL), or --demo")
    return args


def _seconds(text: str) -> float:
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: use between 0.05 and 3600 seconds")
    return value


def _version() -> str:
    from pq_core.cli import version

    return version()  # the distribution's, as `pq --version` says it


def is_url(target: str) -> bool:
    return target.lower().startswith(URL_SCHEMES)


def store_name(queue: pq_core.Queue, target: str) -> str:
    """How the dashboard names the store: the queue's own password-free location when this
    pq_core has it, else the target with any password removed."""
    location = getattr(queue, "location", None)
    return redact(location if isinstance(location, str) and location else target)


def open_store(path: str, queue: str | None, read_only: bool) -> pq_core.Queue:
    """Open an existing store, or raise QueueError: a SQLite file, or a PostgreSQL database
    named by a postgresql:// URL. The dashboard never creates a SQLite file."""
    if is_url(path):
        q = pq_core.open(path, queue=queue or "default", read_only=read_only, busy_timeout=2.0)
        return _checked(q)
    if not os.path.exists(path):
        raise pq_core.StoreNotFound(f"{path}: no such store")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise pq_core.NotAStore(f"{path}: empty file, not a pq store")
    q = pq_core.open(path, queue=queue or "default", read_only=read_only, busy_timeout=2.0)
    return _checked(q)


def _checked(q: pq_core.Queue) -> pq_core.Queue:
    try:
        q.stats()  # reads the schema and counters now, so a bad store fails before any screen
    except BaseException:
        q.close()
        raise
    return q


INSTALL_HINT = "pip install 'pq-jobs[tui]'"  # the dashboard is an extra of the distribution


def _textual_missing() -> bool:
    try:
        import textual  # noqa: F401
    except ImportError:
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    if _textual_missing():  # a plain install has pq and pq_core only: say how to get the rest
        print(
            f"pq-tui: the dashboard needs Textual, not installed here: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    args = parse_args(argv)
    if args.demo:
        from pq_tui.demo import run_demo

        return run_demo(refresh_every=args.refresh)
    try:
        q = open_store(args.store, args.queue, args.read_only)
    except pq_core.QueueError as exc:
        print(f"pq-tui: {redact(str(exc))}", file=sys.stderr)
        return 2
    from pq_tui.app import PqApp

    app = PqApp(
        q,
        time.time,
        scope=args.queue,
        source=store_name(q, args.store),
        read_only=args.read_only,
        refresh_every=args.refresh,
        path=args.store if not is_url(args.store) and os.path.isfile(args.store) else None,
    )
    try:
        app.run()
    finally:
        q.close()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
