"""`pq worker`: run a command once per job, as a process supervisor one can trust.

- The command runs in its own session (so its own process group): the terminal's Ctrl-C
  reaches the worker only, and the worker can stop the command with everything it started.
- It dies with the worker: on Linux the child asks for SIGKILL when its parent goes
  (PR_SET_PDEATHSIG, set between fork and exec), and a guardian process kills the rest of its
  process group, so even a `kill -9` of the worker leaves nothing of the command running while
  the manager hands its job to someone else. On every other exit the worker kills the process
  groups itself.
- While it runs, the job's lease is renewed; `timeout` bounds it; stderr passes through live
  and its last few KiB become the job's error when it fails.
- The first stop signal ends claiming and lets the jobs in hand finish (up to `grace`); a
  second one, or the end of the grace, stops the commands and puts their jobs back to ready
  without counting the attempt.

Standard library only. The heavy lifting is threads: one slot thread per concurrent job (it
forks the child, renews the lease, waits, acks), and two small threads per job that feed stdin
and copy stderr. Signals are handled in the main thread only, as flags it polls.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import pq_core
from pq_core.display import duration, inert, inert_json
from pq_core.model import Item, Status

ERROR_TAIL = 4096  # bytes of a failed command's stderr kept as the job's error
KILL_AFTER = 5.0  # seconds between SIGTERM to a command's group and SIGKILL
_POLL = 0.05  # seconds between looks at signals, deadlines and child exits
_BEAT_AT_LEAST = 10.0  # seconds: the longest gap between two renewals of a running job's lease
_STORE_RETRY = 1.0  # seconds before trying a busy or unreachable store again
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class Options:
    """What `pq worker`'s flags ask for; durations in seconds."""

    lease: float = 300.0
    timeout: float | None = None
    grace: float = 20.0
    concurrency: int = 1
    max_jobs: int | None = None
    exit_when_empty: bool = False
    quiet: bool = False


def resolve(program: str) -> str:
    """The executable file `program` names (on PATH unless it has a slash), or ValueError.
    Checked before any claim, so a typo costs no job an attempt."""
    if os.sep in program:
        path = program
        if not os.path.exists(path):
            raise ValueError(f"cannot run {program!r}: no such file")
    else:
        found = shutil.which(program)
        if found is None:
            raise ValueError(f"cannot run {program!r}: command not found on PATH")
        path = found
    if os.path.isdir(path):
        raise ValueError(f"cannot run {program!r}: it is a directory")
    if not os.access(path, os.X_OK):
        raise ValueError(f"cannot run {program!r}: not executable (permission denied)")
    return path


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up before any fork (the child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return prctl


def _child_setup(prctl: Callable[..., int] | None, guardian: _Guardian) -> Callable[[], None]:
    """What the child does between fork and exec, before it can start anything of its own:
    ask for SIGKILL when the worker dies, and tell the guardian its process group."""
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def setup() -> None:
        # The kernel sends the signal when the *thread* that forked the child ends, so each
        # child is forked by the slot thread that waits for it and outlives it.
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
            if os.getppid() != parent:  # the worker died before the request took effect
                os._exit(1)
        guardian.watch_me()

    return setup


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    import json

    return json.dumps(payload).encode()


@dataclass(eq=False)  # compared and hashed by identity: one per command run
class _Running:
    """One command running for one job; `stop` may be called from any thread."""

    item: Item
    proc: subprocess.Popen[bytes]
    started: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_reason: str | None = None  # why the worker stopped it: "interrupted", "timeout", "lost"
    stop_sent_at: float | None = None
    killed: bool = False

    def signal_group(self, sig: int) -> None:
        with self.lock:
            if self.proc.returncode is None or sig == signal.SIGKILL:
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass  # the group is empty already

    def stop(self, reason: str) -> None:
        """SIGTERM to the command's group now (SIGKILL follows, see `escalate`)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_sent_at = time.monotonic()
            self.signal_group(signal.SIGTERM)

    def escalate(self) -> None:
        sent = self.stop_sent_at
        if sent is not None and not self.killed and time.monotonic() - sent >= KILL_AFTER:
            self.killed = True
            self.signal_group(signal.SIGKILL)


# The guardian: a small process of its own session that outlives a killed worker just long
# enough to kill the process groups the worker's commands were running in. PDEATHSIG kills a
# command itself, but not what it started (`sh -c 'a; b'` forks `a`). The guardian reads
# "+pgid" / "-pgid" lines from a socket whose other end only the worker holds; when that end
# closes, however the worker ended, it kills every group still listed.
_GUARDIAN = r"""
import os, signal, sys
groups = set()
for line in sys.stdin.buffer:
    sign, pgid = line[:1], int(line[1:])
    (groups.add if sign == b"+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Guardian:
    """The worker's side of the guardian: which command groups are running now."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        try:
            mine, theirs = socket.socketpair()
        except OSError:
            return
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _GUARDIAN, "pq worker guardian"],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # neither Ctrl-C nor a kill of the worker's group
            )
            self._sock = mine
        except OSError:
            mine.close()  # no guardian: parent-death signals still kill the commands
        finally:
            theirs.close()

    def _say(self, line: bytes) -> None:
        # One small send is one message on the socket, whoever sends it (a slot thread or a
        # child before exec); MSG_NOSIGNAL: a guardian someone killed costs no SIGPIPE.
        sock = self._sock
        if sock is not None:
            try:
                sock.send(line, socket.MSG_NOSIGNAL)
            except OSError:
                pass

    def watch_me(self) -> None:
        """In a child before exec: its pid is its process group (a session of its own)."""
        self._say(b"+%d\n" % os.getpid())

    def forget(self, pgid: int) -> None:
        self._say(b"-%d\n" % pgid)

    def close(self) -> None:
        """A clean end: every group was forgotten, so the guardian just exits."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class _CannotStart(Exception):
    """The command could not be started for a claimed job (the job was put back)."""


class Supervisor:
    """Claims jobs and runs `argv` for each, `options.concurrency` at a time, until stopped."""

    def __init__(
        self,
        q: pq_core.Queue,
        argv: list[str],
        name: str,
        options: Options,
        *,
        err: TextIO | None = None,
    ) -> None:
        self.q = q
        self.program = argv[0]  # resolved: the file to execute
        self.argv = [name, *argv[1:]]  # argv[0] as the user typed it (busybox-style tools)
        self.name = name
        self.options = options
        self.err = err or sys.stderr
        self._prctl = _prctl()
        self._out = threading.Lock()  # one writer at a time on stderr: lines stay whole
        self._lock = threading.Lock()
        self._running: set[_Running] = set()
        self._claimed = 0  # jobs taken, for --max-jobs
        self._stopping = threading.Event()  # no more claims
        self._signals: list[int] = []
        self._released_on_stop = False
        self._fatal: BaseException | None = None
        self._guardian: _Guardian

    # -- the main thread ---------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped, the queue is empty (exit_when_empty) or max_jobs were taken.
        Returns the exit status: 0; 2 when the command cannot be started; 128 + the signal
        when jobs in hand had to be put back."""
        restore = self._install_signals()
        self._guardian = _Guardian()
        slots = [
            threading.Thread(target=self._slot, name=f"pq-slot-{n}", daemon=True)
            for n in range(self.options.concurrency)
        ]
        try:
            for slot in slots:
                slot.start()
            self._watch(slots)
        finally:
            for running in list(self._running):  # only after an unexpected error
                running.signal_group(signal.SIGKILL)
                self._guardian.forget(running.proc.pid)
            self._guardian.close()
            restore()
        if isinstance(self._fatal, _CannotStart):
            raise ValueError(str(self._fatal))
        if self._fatal is not None:
            raise self._fatal
        if self._released_on_stop and self._signals:
            return 128 + self._signals[0]
        return 0

    def _watch(self, slots: list[threading.Thread]) -> None:
        stop_at: float | None = None
        forced = False
        while any(slot.is_alive() for slot in slots):
            time.sleep(_POLL)  # signal handlers only append to a list; this loop acts on it
            signals = len(self._signals)
            if signals and stop_at is None:
                stop_at = time.monotonic()
                self._stopping.set()
                self._log_stop()
            if stop_at is None or forced:
                continue
            if signals >= 2 or time.monotonic() - stop_at >= self.options.grace:
                forced = True
                with self._lock:
                    in_hand = list(self._running)
                if in_hand:
                    self._log(f"stopping {len(in_hand)} command(s); their jobs go back")
                for running in in_hand:
                    running.stop("interrupted")

    def _log_stop(self) -> None:
        with self._lock:
            in_hand = len(self._running)
        if in_hand:
            self._log(
                f"stopping: claiming no more; {in_hand} job(s) in hand get up to "
                f"{duration(self.options.grace)} to finish (signal again to put them back)"
            )
        else:
            self._log("stopping")

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def on_signal(signum: int, frame: object) -> None:
            self._signals.append(signum)  # atomic; no lock may be taken in a handler

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    # -- slot threads ------------------------------------------------------------------------

    def _slot(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._take_ticket():
                    return
                item = self._claim()
                if item is None:
                    self._return_ticket()
                    if self.options.exit_when_empty:
                        return
                    continue
                if self._stopping.is_set():  # claimed as the stop came: give it straight back
                    self._put_back(item, time.monotonic(), "the worker is stopping")
                    return
                self._run(item)
        except BaseException as exc:  # _CannotStart, or a bug: stop, and let run() raise it
            self._fatal = exc
            self._stopping.set()

    def _take_ticket(self) -> bool:
        with self._lock:
            limit = self.options.max_jobs
            if limit is not None and self._claimed >= limit:
                return False
            self._claimed += 1
            return True

    def _return_ticket(self) -> None:
        with self._lock:
            self._claimed -= 1

    def _claim(self) -> Item | None:
        wait = None if self.options.exit_when_empty else 0.5
        try:
            return self.q.get(wait, lease=self.options.lease)
        except pq_core.QueueError as exc:  # a busy or unreachable store: try again soon
            self._log(f"cannot claim: {exc}; trying again in {duration(_STORE_RETRY)}")
            self._stopping.wait(_STORE_RETRY)
            return None

    def _run(self, item: Item) -> None:
        started = time.monotonic()
        env = dict(
            os.environ,
            PQ_JOB_ID=str(item.id),
            PQ_QUEUE=item.queue,
            PQ_ATTEMPT=str(item.attempts),
            PQ_MAX_ATTEMPTS=str(item.max_attempts),
        )
        try:
            proc = subprocess.Popen(
                self.argv,
                executable=self.program,
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # own session and group: no terminal Ctrl-C, one kill
                preexec_fn=_child_setup(self._prctl, self._guardian),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._put_back(item, started, "the command could not be started")
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise _CannotStart(f"cannot run {self.name!r}: {reason}") from None
        running = _Running(item, proc, started)
        try:
            with self._lock:
                self._running.add(running)
            tail = bytearray()
            feeder = threading.Thread(target=_feed, args=(proc, item.payload), daemon=True)
            copier = threading.Thread(target=self._copy_stderr, args=(proc, tail), daemon=True)
            feeder.start()
            copier.start()
            self._supervise(running)
            # Whatever the command left running in its group ends with the job.
            running.signal_group(signal.SIGKILL)
            copier.join(timeout=2.0)  # a process outside the group may hold the pipe
            feeder.join(timeout=2.0)
            error_tail = bytes(tail)
        finally:
            with self._lock:
                self._running.discard(running)
            if proc.returncode is None:  # only on an unexpected error above
                running.signal_group(signal.SIGKILL)
                proc.wait()
            self._guardian.forget(proc.pid)
        self._settle(running, error_tail)

    def _supervise(self, running: _Running) -> None:
        """Wait for the command, renewing the lease and enforcing the timeout."""
        proc, lease, timeout = running.proc, self.options.lease, self.options.timeout
        # A third of the lease, and at least every 10 s: a manager run with --lease-timeout
        # takes back jobs not heartbeat for that long, whatever their lease.
        beat_every = min(max(lease / 3, 0.05), _BEAT_AT_LEAST)
        next_beat = running.started + beat_every
        current = running.item
        while True:
            try:
                proc.wait(timeout=_POLL)
                return
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            running.escalate()
            late = timeout is not None and now - running.started >= timeout
            if late and running.stop_reason is None:
                running.stop("timeout")
            if now >= next_beat and running.stop_reason is None:
                try:
                    current = self.q.heartbeat(current, lease=lease)
                    next_beat = now + beat_every
                except (pq_core.LeaseLost, pq_core.ItemNotFound):
                    running.stop("lost")  # the job may run elsewhere now: do not run it twice
                except pq_core.QueueError as exc:
                    self._log(f"job {running.item.id}: cannot renew the lease: {exc}")
                    next_beat = now + min(beat_every, _STORE_RETRY)

    def _copy_stderr(self, proc: subprocess.Popen[bytes], tail: bytearray) -> None:
        """The command's stderr, passed through as it comes; the last ERROR_TAIL bytes kept."""
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        out = getattr(self.err, "buffer", None)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            tail.extend(chunk)
            if len(tail) > 2 * ERROR_TAIL:  # trimmed now and then, so memory stays bounded
                del tail[:-ERROR_TAIL]
            if out is not None:
                with self._out:
                    try:
                        out.write(chunk)
                        out.flush()
                    except (OSError, ValueError):
                        pass  # our stderr is gone; the tail is still kept
        proc.stderr.close()

    def _settle(self, running: _Running, tail: bytes) -> None:
        """Ack the job by how the command ended, and log one line."""
        item, proc = running.item, running.proc
        code = proc.returncode
        elapsed = time.monotonic() - running.started
        if running.stop_reason == "lost":
            self._job_log(item, "lost", elapsed, "the lease was lost; the job may run elsewhere")
            return
        if running.stop_reason == "interrupted" and code != 0:
            self._put_back(item, running.started, "stopped by the worker", interrupted=True)
            return
        if running.stop_reason == "timeout":
            reason = f"timed out after {duration(self.options.timeout)}"
            self._fail(item, reason, reason, elapsed)
        elif code == 0:
            try:
                self._retrying(lambda: self.q.done(item))
            except (pq_core.LeaseLost, pq_core.ItemNotFound) as exc:
                self._job_log(item, "lost", elapsed, str(exc))
                return
            self._job_log(item, "done", elapsed, None)
        else:
            reason = _exit_text(code)
            text = _tail_text(tail)
            self._fail(item, text or f"{self.name} {reason}", reason, elapsed)

    def _fail(self, item: Item, error: str, reason: str, elapsed: float) -> None:
        try:
            status = self._retrying(lambda: self.q.fail(item, error=error))
        except (pq_core.LeaseLost, pq_core.ItemNotFound) as exc:
            self._job_log(item, "lost", elapsed, str(exc))
            return
        self._job_log(item, "dead" if status == Status.DEAD else "failed", elapsed, reason)

    def _put_back(
        self, item: Item, started: float, reason: str, *, interrupted: bool = False
    ) -> None:
        elapsed = time.monotonic() - started
        try:
            self._retrying(lambda: self.q.release(item))
        except (pq_core.LeaseLost, pq_core.ItemNotFound) as exc:
            self._job_log(item, "lost", elapsed, str(exc))
            return
        if interrupted:  # work was cut short: the exit status says so
            self._released_on_stop = True
        self._job_log(item, "released", elapsed, reason)

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """An ack that meets a busy or unreachable store is tried again for a while: giving up
        would leave the job to come back after its lease and run a second time."""
        deadline = time.monotonic() + min(self.options.lease, 60.0)
        while True:
            try:
                return call()
            except (pq_core.LeaseLost, pq_core.ItemNotFound):
                raise
            except pq_core.QueueError as exc:
                if time.monotonic() >= deadline:
                    raise
                self._log(f"cannot record the outcome yet: {exc}; trying again")
                time.sleep(_STORE_RETRY)

    # -- logging -----------------------------------------------------------------------------

    def _job_log(self, item: Item, outcome: str, elapsed: float, reason: str | None) -> None:
        if self.options.quiet:
            return
        line = (
            f"job={item.id} queue={_field(item.queue)} attempt={item.attempts}/"
            f"{item.max_attempts} outcome={outcome} duration={duration(elapsed)}"
        )
        if reason:
            line += f" reason={_field(reason)}"
        self._log(line, always=False)

    def _log(self, message: str, *, always: bool = True) -> None:
        if self.options.quiet and not always:
            return
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._out:
            try:
                print(f"{at} pq worker: {inert(message)}", file=self.err, flush=True)
            except (OSError, ValueError):
                pass  # stderr closed (a terminal went away): the work goes on


def _feed(proc: subprocess.Popen[bytes], payload: Any) -> None:
    """Write the payload to the command's stdin and close it; a command that does not read
    its stdin is fine."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(_payload_bytes(payload))
    except OSError:
        pass
    try:
        proc.stdin.close()
    except OSError:
        pass


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _tail_text(tail: bytes) -> str:
    text = tail[-ERROR_TAIL:].decode("utf-8", "replace")
    if len(tail) > ERROR_TAIL:
        text = "…" + text.lstrip("\ufffd")  # the cut may split a character
    return text.strip()


def _field(value: str) -> str:
    """A log field's value: bare when it is one plain word, else a JSON string (inert)."""
    text = inert(value)
    if text and text == value and not any(c in value for c in ' "=\\'):
        return text
    return inert_json(value)
