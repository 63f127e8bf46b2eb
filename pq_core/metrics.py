"""`pq metrics`: the store's state in the Prometheus text exposition format, and a small
HTTP server that lets Prometheus scrape it with no other service (standard library only).

Every value is read from `stats()` and `workers()`, which read counters, not the jobs table,
so a scrape stays cheap on a store of millions of jobs. Series the core does not offer yet
(failed per minute, paused queues, scheduled jobs) appear as soon as it does.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import pq_core
from pq_core.display import inert

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_HOST = "127.0.0.1"  # an address others can reach must be asked for

Sample = tuple[dict[str, str], float]


def render(q: pq_core.Queue, queue: str | None = None) -> str:
    """Every queue's (or one queue's) counts, ages and throughput, and the live workers, as
    exposition text."""
    stats = q.stats()
    queues = list(stats.queues.values()) if queue is None else [stats[queue]]
    out: list[str] = []

    def family(name: str, help: str, samples: Iterable[Sample]) -> None:
        rows = list(samples)
        if not rows:
            return
        out.append(f"# HELP {name} {help}")
        out.append(f"# TYPE {name} gauge")
        out.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in rows)

    family(
        "pq_jobs",
        "Jobs per queue and status (ready includes scheduled jobs).",
        (
            ({"queue": qs.queue, "status": status.value}, n)
            for qs in queues
            for status, n in qs.counts.items()
        ),
    )
    family(
        "pq_jobs_scheduled",
        "Ready jobs not available yet (delayed or backing off).",
        _present(queues, "scheduled", lambda v: v),
    )
    family(
        "pq_oldest_ready_age_seconds",
        "Age of the oldest ready job; 0 when none is ready.",
        (({"queue": qs.queue}, qs.oldest_ready_age or 0.0) for qs in queues),
    )
    family(
        "pq_done_per_minute",
        "Jobs done in the last whole minute.",
        (({"queue": qs.queue}, _last_whole_minute(qs.done_per_minute)) for qs in queues),
    )
    family(
        "pq_failed_per_minute",
        "Job attempts that failed in the last whole minute.",
        _present(queues, "failed_per_minute", _last_whole_minute),
    )
    family(
        "pq_queue_paused",
        "1 when the queue is paused (hands out no jobs), else 0.",
        _present(queues, "paused", lambda v: 1 if v else 0),
    )
    # Consumers per queue they serve, managers (which watch every queue) by kind alone; every
    # queue shown and the managers always appear, so "none alive" reads 0, not a missing series.
    live: dict[tuple[str, str], int] = {("manager", ""): 0}
    live.update({("consumer", qs.queue): 0 for qs in queues})
    for w in q.workers():
        key = ("manager", "") if w.kind == "manager" else (w.kind, w.queue)
        if w.alive and (w.kind == "manager" or queue is None or w.queue == queue):
            live[key] = live.get(key, 0) + 1
    family(
        "pq_workers",
        "Live consumers (per queue) and managers.",
        (
            ({"kind": kind, "queue": name} if name else {"kind": kind}, n)
            for (kind, name), n in sorted(live.items())
        ),
    )
    return "\n".join(out) + "\n"


def _present(
    queues: Sequence[Any], attribute: str, value: Callable[[Any], float]
) -> Iterable[Sample]:
    """A sample per queue for a figure the core may not offer yet (then none at all)."""
    for qs in queues:
        figure = getattr(qs, attribute, None)
        if figure is not None:
            yield {"queue": qs.queue}, value(figure)


def _last_whole_minute(per_minute: Sequence[int]) -> int:
    """The last entry is the minute in progress; the one before it is the last whole minute."""
    return per_minute[-2] if len(per_minute) >= 2 else 0


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in labels.items()) + "}"


def label_value(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and newline escaped.
    Control characters are first made visible escapes (`\\x1b`), as everywhere pq prints,
    so the exposition text is inert on a terminal too; their backslash is then escaped by
    the format, and a scraper reads the visible form."""
    text = inert(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 3))


# -- the HTTP server --------------------------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """'[HOST]:PORT' → (host, port); an empty host is 127.0.0.1, '[::1]:9464' is IPv6."""
    spec = text.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = spec.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or (":" in host and "[" not in spec):
        raise ValueError(f"--listen {text!r}: use [HOST]:PORT, such as :9464 or 0.0.0.0:9464")
    return host or DEFAULT_HOST, int(port)


def serve(
    q: pq_core.Queue,
    host: str,
    port: int,
    queue: str | None = None,
    *,
    log: Callable[[str], None],
) -> int:
    """Serve GET /metrics on host:port until SIGINT or SIGTERM; anything else is a 404.
    Returns the exit status (0). One request at a time: a scrape takes milliseconds."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "pq-metrics"
        sys_version = ""  # no need to tell every client which Python runs it
        timeout = 10  # a client that stops sending does not hold the server

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            if urlsplit(self.path).path != "/metrics":
                self._send(404, b"not found: the metrics are at /metrics\n", body)
                return
            try:
                text = render(q, queue)
            except pq_core.QueueError as exc:
                log(f"cannot read the store: {exc}")
                self._send(503, f"cannot read the store: {exc}\n".encode(), body)
                return
            self._send(200, text.encode(), body, CONTENT_TYPE)

        def _send(self, code: int, data: bytes, body: bool, kind: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a line per scrape would drown the log

    class Server(HTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        server = Server((host, port), Handler)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    log(f"serving http://{shown}:{bound_port}/metrics")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # leaves serve_forever in the main thread

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        log("stopped")
    return 0
