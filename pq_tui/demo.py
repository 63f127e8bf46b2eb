"""`pq-tui --demo`: a throwaway store that a newcomer can watch move.

The demo makes a store in a temporary folder and starts, each in its own process, a producer,
consumers that sometimes fail a job and sometimes crash (they kill themselves with SIGKILL while
holding a claim, as a real crash would), and a manager that takes crashed consumers' jobs back.
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

QUEUES = ("emails", "reports")
CONSUMERS = (("emails", 2), ("reports", 1))  # (queue, how many)
LEASE = 15  # seconds; a crashed consumer's jobs come back sooner, by the manager's crash check
SWEEP = 2.0  # manager interval, seconds
CRASH = 0.03  # chance that a consumer dies holding the job it just claimed
FAIL = 0.12  # chance that a job fails (back to ready with back-off, or dead at max attempts)
MAX_READY = 150  # the producer slows down above this many ready jobs

PEOPLE = ("ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "dennis", "frances")
TEMPLATES = ("welcome", "receipt", "password-reset", "digest", "invoice")
ERRORS = (
    "smtplib.SMTPServerDisconnected: Connection unexpectedly closed",
    "TimeoutError: smtp.example.com:587 did not answer in 30s",
    'Traceback (most recent call last):\n  File "render.py", line 12, in render\n'
    "KeyError: 'first_name'",
    "ValueError: amount must be in cents",
    "\x1b[31mRenderError\x1b[0m: template [b]digest[/b] missing",  # shown inert
)


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


def _payload(rng: random.Random, n: int) -> dict[str, object]:
    person = rng.choice(PEOPLE)
    return {"to": f"{person}@example.com", "template": rng.choice(TEMPLATES), "n": n}


def producer(path: str, parent: int) -> None:
    q = pq_core.open(path, queue="emails")
    reports = pq_core.open(path, queue="reports")
    rng = random.Random()
    running = threading.Event()
    running.set()
    _watch_parent(parent, running.clear)
    signal.signal(signal.SIGTERM, lambda *_: running.clear())
    n = 0
    while running.is_set():
        ready = q.stats().counts[pq_core.Status.READY]
        pause = 0.6 if ready < MAX_READY else 2.0
        burst = rng.choice((1, 1, 1, 2, 3, 6)) if ready < MAX_READY else 1
        jobs = [_payload(rng, n + i) for i in range(burst)]
        n += burst
        q.put_many(jobs, priority=rng.choice((0, 0, 0, 5)), max_attempts=3)
        if rng.random() < 0.15:
            region = rng.choice(("north", "south", "east", "west"))
            reports.put(
                f"daily-report region={region} format=pdf",
                dedup_key=f"report-{region}",  # one pending report per region at a time
                priority=rng.choice((0, 9)),
            )
        time.sleep(pause * rng.uniform(0.5, 1.5))
    q.close()
    reports.close()


def consumer(path: str, queue: str, parent: int) -> None:
    q = pq_core.open(path, queue=queue, lease=LEASE)
    rng = random.Random()
    _watch_parent(parent, q.stop)
    signal.signal(signal.SIGTERM, lambda *_: q.stop())
    for item in q.consume():
        if rng.random() < CRASH:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash, holding the claim
        time.sleep(rng.uniform(0.2, 1.2) if queue == "emails" else rng.uniform(1.0, 3.0))
        if rng.random() < FAIL:
            q.fail(item, error=rng.choice(ERRORS))
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
    q = pq_core.open(path, queue="emails", clock=lambda: clock[0])
    rng = random.Random(7)
    for minute in range(30):
        clock[0] = now - 1800 + minute * 60
        per_minute = int(20 + 15 * abs(((minute * 7) % 24) - 12) / 12) + rng.randint(0, 6)
        q.put_many([_payload(rng, i) for i in range(per_minute)])
        for item in q.get_many(per_minute, lease=60):
            if rng.random() < FAIL / 2 and minute < 25:
                q.fail(item, error=rng.choice(ERRORS), retry_in=0)
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
