"""`pq-tui --demo`: a throwaway store that a newcomer can watch move.

The demo makes a store in a temporary folder and starts, each in its own process, a producer
of emails, thumbnails, webhooks and reports (some of them delayed, a few "poison" jobs that
fail every time and are dead within seconds, with the error each kind of job really meets),
one consumer per queue that sometimes meets a passing failure and sometimes crashes (it kills
itself with SIGKILL while holding a claim, as a real crash would), and a manager that takes
crashed consumers' jobs back. The reports queue starts paused and is resumed after three
minutes (or when an operator resumes it), so pausing and resuming can be tried.
A supervisor thread restarts crashed consumers. When the dashboard quits, every process is
stopped and the folder is deleted.

The roles also run on their own: `python -m pq_tui.demo consumer STORE emails`.
This module imports no Textual at the top, so the worker processes stay light.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import pq_core

QUEUES = ("emails", "thumbnails", "webhooks", "reports")
PAUSED, PAUSED_FOR = "reports", 180.0  # the queue the demo starts paused, and for how long
CONSUMERS = (("emails", 2), ("thumbnails", 1), ("webhooks", 1), ("reports", 1))
LEASE = 15  # seconds; a crashed consumer's jobs come back sooner, by the manager's crash check
SWEEP = 2.0  # manager interval, seconds
CRASH = 0.02  # chance that a consumer dies holding the job it just claimed
FLAKY = 0.08  # chance that a job meets a passing failure (a timeout: it retries, with back-off)
POISON = 0.06  # share of jobs that fail every time (dead after max_attempts, within seconds)
MAX_READY = 150  # the producer slows down above this many ready jobs

PEOPLE = ("ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "dennis", "frances")
TEMPLATES = ("welcome", "receipt", "password-reset", "digest", "invoice")
# (queue) → passing errors (the next attempt may work) and the error of a poison job
FLAKY_ERRORS = {
    "emails": (
        "TimeoutError: smtp.mailgun.org:587 did not answer in 30s",
        'Traceback (most recent call last):\n  File "/srv/app/mailer/send.py", line 41, in send\n'
        "    smtp.send_message(message)\n"
        "smtplib.SMTPServerDisconnected: Connection unexpectedly closed",
    ),
    "thumbnails": (
        "OSError: [Errno 28] No space left on device: '/var/cache/thumbs/512'",
        "MemoryError",
    ),
    "webhooks": (
        "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='hooks.acme-shop.com', "
        "port=443): Max retries exceeded (connect timeout=10)",
        "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable",
    ),
    "reports": ("psycopg.errors.QueryCanceled: canceling statement due to statement timeout",),
}
POISON_ERRORS = {
    "emails": "smtplib.SMTPRecipientsRefused: {'{to}': (550, b'5.1.1 mailbox unavailable')}",
    "thumbnails": (
        'Traceback (most recent call last):\n  File "/srv/app/thumbs/worker.py", line 88, in '
        "make_thumbnail\n    image = Image.open(source)\n"
        "PIL.UnidentifiedImageError: cannot identify image file '{to}'"
    ),
    "webhooks": "requests.exceptions.HTTPError: 410 Client Error: Gone for url: {to}",
    "reports": (
        'Traceback (most recent call last):\n  File "/srv/app/reports/render.py", line 12, in '
        "render\nKeyError: 'region'"
    ),
}
POISON_MARKS = {  # what in a payload makes its consumer fail every time
    "emails": "@oldcorp.example",
    "thumbnails": ".HEIC",
    "webhooks": "legacy.partner-crm.example",
}


class Demo:
    """The demo's processes and store; a context manager that stops them all on exit."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, "demo.sqlite")
        self.log = open(os.path.join(folder, "workers.log"), "ab")  # noqa: SIM115
        self.processes: list[tuple[list[str], subprocess.Popen[bytes]]] = []
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def __enter__(self) -> Demo:
        try:
            pq_core.open(self.path).close()
            self._role_now("history")  # half an hour of throughput: the sparkline has a past
            self._start("manager")
            self._start("producer")
            for queue, n in CONSUMERS:
                for _ in range(n):
                    self._start("consumer", queue)
            self._supervisor.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the supervisor, then every process: SIGTERM, and SIGKILL what lingers."""
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=2)
        with self._lock:
            procs = [p for _, p in self.processes]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 3
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for _, p in self.processes]

    def _command(self, role: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "pq_tui.demo", role, self.path, *args, str(os.getpid())]

    def _role_now(self, role: str) -> None:
        subprocess.run(self._command(role), stdin=subprocess.DEVNULL, stdout=self.log,
                       stderr=self.log, check=True, timeout=60)  # fmt: skip

    def _start(self, role: str, *args: str) -> None:
        command = self._command(role, *args)
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,  # the terminal's signals are the dashboard's, not theirs
        )
        with self._lock:
            self.processes.append((command, proc))

    def _supervise(self) -> None:
        """Restart consumers that crashed, after a pause, as a process manager would."""
        while not self._stop.wait(0.5):
            with self._lock:
                crashed = [(c, p) for c, p in self.processes if p.poll() is not None]
            for command, proc in crashed:
                if self._stop.is_set():
                    return
                with self._lock:
                    self.processes.remove((command, proc))
                role, args = command[3], command[5:-1]
                if role == "consumer":
                    self.restarts += 1
                    self._start(role, *args)


def run_demo(refresh_every: float = 1.0) -> int:
    """Run the dashboard on a demo store; everything started here stops when it quits."""
    from pq_tui.app import PqApp

    with tempfile.TemporaryDirectory(prefix="pq-demo-") as folder, Demo(folder) as demo:
        queue = pq_core.open(demo.path)
        app = PqApp(
            queue,
            time.time,
            source="demo store (deleted on exit)",
            refresh_every=refresh_every,
        )
        # A closed terminal (SIGHUP) or a kill (SIGTERM) ends the app like `q`, so that the
        # workers are stopped and the folder deleted here rather than left behind.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, lambda *_: app.call_later(app.exit))
        try:
            app.run()
        finally:
            queue.close()
    return 0


# -- the roles, each in its own process ------------------------------------------------------


def _watch_parent(parent: int, stop: Callable[[], None]) -> None:
    """Stop when the dashboard is gone, even if it was killed and could not say so."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                stop()
                return

    threading.Thread(target=watch, daemon=True).start()


def _payload(rng: random.Random, queue: str, n: int, poison: bool) -> dict[str, object]:
    """A job as each queue's producer would make it; a poison job carries what makes its
    consumer fail every time (an address that is gone, an image it cannot read…)."""
    if queue == "emails":
        person = "j.doe@oldcorp.example" if poison else f"{rng.choice(PEOPLE)}@example.com"
        job: dict[str, object] = {"to": person, "template": rng.choice(TEMPLATES)}
    elif queue == "thumbnails":
        kind = "HEIC" if poison else "jpg"
        job = {"image": f"uploads/2025/01/IMG_{4000 + n % 9000}.{kind}", "sizes": [128, 512]}
    elif queue == "webhooks":
        host = "legacy.partner-crm.example/webhooks/v1" if poison else "hooks.acme-shop.com/pq"
        job = {"url": f"https://{host}", "event": "order.paid", "order": 10_000 + n}
    else:
        job = {"report": "daily", "format": "pdf"}
        if not poison:
            job["region"] = rng.choice(("eu", "us", "apac"))
    return job


def _poison(queue: str, payload: object) -> str | None:
    """What a consumer of `queue` can never get past in `payload`, or None."""
    if not isinstance(payload, dict):
        return None
    if queue == "reports":
        return None if "region" in payload else "region"
    target = str(payload.get("to") or payload.get("image") or payload.get("url") or "")
    return target if POISON_MARKS[queue] in target else None


def producer(path: str, parent: int) -> None:
    queues = {name: pq_core.open(path, queue=name) for name in QUEUES}
    emails = queues["emails"]
    rng = random.Random()
    running = threading.Event()
    running.set()
    _watch_parent(parent, running.clear)
    signal.signal(signal.SIGTERM, lambda *_: running.clear())
    # An incident to repair from the first minute: one job of each kind that can never work.
    # And tomorrow morning's digest, waiting for its time.
    for name in QUEUES:
        queues[name].put(_payload(rng, name, 0, True), max_attempts=3, priority=9)
    emails.put(_payload(rng, "emails", 0, False) | {"template": "digest"}, delay="16h")
    # The reports queue starts paused (its jobs pile up; puts go on) and is resumed after a
    # while, unless an operator resumed it first: `Q` and `P` in the dashboard do that.
    queues[PAUSED].pause(actor="demo ops")
    resume_at = time.monotonic() + PAUSED_FOR
    n = 0
    while running.is_set():
        if resume_at and time.monotonic() > resume_at:
            queues[PAUSED].resume(actor="demo ops")
            resume_at = 0.0
        ready = emails.stats().counts[pq_core.Status.READY]
        pause = 0.6 if ready < MAX_READY else 2.0
        burst = rng.choice((1, 1, 1, 2, 3, 6)) if ready < MAX_READY else 1
        jobs = [_payload(rng, "emails", n + i, rng.random() < POISON) for i in range(burst)]
        n += burst
        emails.put_many(jobs, priority=rng.choice((0, 0, 0, 5)), max_attempts=3)
        for name, chance in (("thumbnails", 0.5), ("webhooks", 0.6)):
            if rng.random() < chance:
                queues[name].put(_payload(rng, name, n, rng.random() < POISON), max_attempts=3)
        if rng.random() < 0.1:
            # a digest for later: shown as scheduled until its time comes
            later = rng.choice((45, 120, 600, 3600))
            emails.put(_payload(rng, "emails", n, False) | {"template": "digest"}, delay=later)
        if rng.random() < 0.12:
            report = _payload(rng, "reports", n, rng.random() < POISON)
            queues["reports"].put(
                report,
                dedup_key=f"report-{report.get('region', 'all')}",  # one pending per region
                priority=rng.choice((0, 9)),
                delay=rng.choice((0, 0, 30)),
            )
        time.sleep(pause * rng.uniform(0.5, 1.5))
    for q in queues.values():
        q.close()


WORK_SECONDS = {"emails": (0.1, 0.6), "thumbnails": (0.3, 1.5), "webhooks": (0.1, 0.4)}


def consumer(path: str, queue: str, parent: int) -> None:
    q = pq_core.open(path, queue=queue, lease=LEASE)
    rng = random.Random()
    _watch_parent(parent, q.stop)
    signal.signal(signal.SIGTERM, lambda *_: q.stop())
    for item in q.consume():
        if rng.random() < CRASH:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash, holding the claim
        time.sleep(rng.uniform(*WORK_SECONDS.get(queue, (1.0, 3.0))))
        poison = _poison(queue, item.payload)
        if poison is not None:
            q.fail(item, error=POISON_ERRORS[queue].replace("{to}", poison))
        elif rng.random() < FLAKY:
            q.fail(item, error=rng.choice(FLAKY_ERRORS[queue]))
    q.close()


def manager(path: str, parent: int) -> None:
    q = pq_core.open(path)
    m = pq_core.Manager(q, interval=SWEEP)
    _watch_parent(parent, m.stop)
    m.run()  # stops on SIGTERM
    q.close()


def history(path: str, parent: int) -> None:
    """Half an hour of past work, at past times, so the throughput panel starts full."""
    now = time.time()
    clock = [now - 1800]
    rng = random.Random(7)
    for name, base in (("emails", 50), ("thumbnails", 20), ("webhooks", 25)):
        q = pq_core.open(path, queue=name, clock=lambda: clock[0])
        for minute in range(30):
            clock[0] = now - 1800 + minute * 60
            per_minute = int(base + base * abs(((minute * 7) % 24) - 12) / 16) + rng.randint(0, 4)
            q.put_many([_payload(rng, name, i, False) for i in range(per_minute)])
            for item in q.get_many(per_minute, lease=60):
                if rng.random() < FLAKY / 2 and minute < 25:
                    q.fail(item, error=rng.choice(FLAKY_ERRORS[name]), retry_in=0)
                else:
                    q.done(item)
        clock[0] = now - 30
        q.close()


ROLES: dict[str, Callable[..., None]] = {
    "producer": producer,
    "consumer": consumer,
    "manager": manager,
    "history": history,
}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ROLES:
        print(f"usage: python -m pq_tui.demo {{{','.join(ROLES)}}} STORE [QUEUE] PARENT_PID")
        return 2
    role, path, *args = argv
    *rest, parent = args
    ROLES[role](path, *rest, int(parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
