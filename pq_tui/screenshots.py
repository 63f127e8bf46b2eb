"""The dashboard's pictures: a seeded store, the scenes shown in `screenshots/`, and the command
that redraws them.

    uv run python -m pq_tui.screenshots            # rewrite every SVG in screenshots/
    uv run python -m pq_tui.screenshots main help  # only these

The snapshot tests (tests/tui/test_snapshots.py) run the same scenes through `snap_compare`,
so a picture in `screenshots/` is exactly what the tests check. Everything in a scene is fixed:
the clock, the store's contents and times, and the worker ids (which normally carry this
machine's host name and process ids).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pq_core
from pq_core import identity
from pq_tui.app import PqApp
from pq_tui.pilot import press, settle

T0 = 1_736_942_400.0  # 2025-01-15 12:00:00 UTC: "now" in every scene
ACTOR = "pq-tui ada@ops-laptop"
SIZE = (150, 42)
HOSTILE = (
    "[bold red]not markup[/] \x1b[31mnot red\x1b[0m \x1b]52;c;cHduZWQ=\x07 "
    "\x1b[2J\u202egnp.exe\x00 done"
)


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, moment: float) -> Clock:
        self.now = moment
        return self


@contextmanager
def acting_as(worker: str) -> Iterator[None]:
    """Make pq_core see this process as `worker` ("host:pid:start"), so that what the seed
    records is the same on every machine and every run."""
    saved = identity.worker_id, identity.HOST
    identity.worker_id = lambda: worker
    identity.HOST = worker.split(":", 1)[0]
    try:
        yield
    finally:
        identity.worker_id, identity.HOST = saved


SMTP_DISCONNECT = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/mailer/send.py", line 41, in send\n'
    "    smtp.send_message(message)\n"
    '  File "/usr/lib/python3.11/smtplib.py", line 986, in send_message\n'
    "smtplib.SMTPServerDisconnected: Connection unexpectedly closed"
)
SMTP_TIMEOUT = "TimeoutError: smtp.mailgun.org:587 did not answer in 30s"
MAILBOX_GONE = (
    "smtplib.SMTPRecipientsRefused: {'j.doe@oldcorp.example': (550, b'5.1.1 mailbox unavailable')}"
)
BAD_AMOUNT = "ValueError: amount must be in cents, got 12.5"
HEIC = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/thumbs/worker.py", line 88, in make_thumbnail\n'
    "    image = Image.open(source)\n"
    "PIL.UnidentifiedImageError: cannot identify image file 'uploads/2025/01/IMG_4411.HEIC'"
)
DISK_FULL = "OSError: [Errno 28] No space left on device: '/var/cache/thumbs/512/IMG_4402.jpg'"
HOOK_TIMEOUT = (
    "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='hooks.acme-shop.com', "
    "port=443): Max retries exceeded with url: /pq/orders (connect timeout=10)"
)
HOOK_GONE = (
    "requests.exceptions.HTTPError: 410 Client Error: Gone for url: "
    "https://legacy.partner-crm.example/webhooks/v1"
)


def seed(path: str | os.PathLike[str], *, hostile: bool = False) -> None:
    """Fill a new store with a small, fixed half hour of operations: emails, thumbnails,
    webhooks and reports; every status; throughput; failures of several kinds (retrying,
    backing off, dead); delayed jobs; a crashed consumer whose jobs the manager took back;
    operator actions; live and gone workers; a running manager. With `hostile`, the newest job
    is one whose payload and error are full of markup and terminal control sequences (the
    tests' fixture; the README's picture leaves it out)."""
    clock = Clock(T0 - 1800)
    emails = pq_core.open(path, queue="emails", clock=clock)
    thumbs = pq_core.open(path, queue="thumbnails", clock=clock)
    hooks = pq_core.open(path, queue="webhooks", clock=clock)
    reports = pq_core.open(path, queue="reports", clock=clock)
    people = ["ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "dennis"]
    templates = ["welcome", "receipt", "password-reset", "digest"]
    for minute in range(30):
        clock.at(T0 - 1800 + minute * 60)
        emails.put_many(
            [
                {"to": f"{people[(minute + i) % 8]}@example.com", "template": templates[i % 4]}
                for i in range(1 + minute % 3)
            ]
        )
        if minute % 2 == 0:
            photo = 4380 + minute
            thumbs.put({"image": f"uploads/2025/01/IMG_{photo}.jpg", "sizes": [128, 512]})
        if minute % 3 == 0:
            hooks.put(
                {"url": "https://hooks.acme-shop.com/pq/orders", "event": "order.paid",
                 "order": 10200 + minute}
            )  # fmt: skip
        if minute % 10 == 0:
            reports.put(f"daily-report region={['eu', 'us', 'apac'][minute // 10]} format=pdf")

    # mail-1 and thumb-1 work steadily: the done-per-minute sparklines.
    with acting_as("mail-1:4101:77"):
        for minute in range(30):
            clock.at(T0 - 1795 + minute * 60)
            for _ in range(minute % 4):
                item = emails.get(lease=120)
                if item is not None:
                    emails.done(item)
    with acting_as("thumb-1:5120:31"):
        for minute in range(0, 30, 2):
            clock.at(T0 - 1790 + minute * 60)
            item = thumbs.get(lease=120)
            if item is not None:
                thumbs.done(item)

    # Failures. mail-2 has SMTP trouble: two jobs back to ready to retry, one invoice with a
    # bad amount dead at once (one attempt), and a mailbox that is gone, dead after three.
    flaky = pq_core.open(path, queue="emails", clock=clock)
    with acting_as("mail-2:4202:91"):
        clock.at(T0 - 840)
        for error in (SMTP_DISCONNECT, SMTP_TIMEOUT):
            item = flaky.get(lease=120)
            if item is not None:
                flaky.fail(item, error=error)
        clock.at(T0 - 830)
        invoice = {"to": "ken@example.com", "template": "invoice", "amount": 12.5}
        one_shot = flaky.put(invoice, max_attempts=1, priority=9)
        item = flaky.get(lease=120)
        if item is not None:
            flaky.fail(item, error=BAD_AMOUNT)
        gone = flaky.put({"to": "j.doe@oldcorp.example", "template": "digest"}, priority=9)
        for step in (800, 700, 600):
            clock.at(T0 - step)
            item = flaky.get(lease=120)
            if item is not None and item.id == gone:
                flaky.fail(item, error=MAILBOX_GONE, retry_in=0)

    # thumb-1 meets an iPhone photo it cannot read (dead) and a full disk (retrying).
    with acting_as("thumb-1:5120:31"):
        clock.at(T0 - 610)
        heic = thumbs.put(
            {"image": "uploads/2025/01/IMG_4411.HEIC", "sizes": [128, 512]},
            max_attempts=2,
            priority=5,
        )
        for step in (600, 540):
            clock.at(T0 - step)
            item = thumbs.get(lease=120)
            if item is not None and item.id == heic:
                thumbs.fail(item, error=HEIC, retry_in=0)
        clock.at(T0 - 200)
        item = thumbs.get(lease=120)
        if item is not None:
            thumbs.fail(item, error=DISK_FULL, retry_in=300)  # backing off: scheduled

    # hook-1: the shop's endpoint times out (backing off), a partner's is gone for good.
    with acting_as("hook-1:6060:4"):
        clock.at(T0 - 500)
        legacy = hooks.put(
            {"url": "https://legacy.partner-crm.example/webhooks/v1", "event": "order.paid",
             "order": 10188},
            max_attempts=1, priority=5,
        )  # fmt: skip
        item = hooks.get(lease=60)
        if item is not None and item.id == legacy:
            hooks.fail(item, error=HOOK_GONE)
        clock.at(T0 - 90)
        for _ in range(2):
            item = hooks.get(lease=60)
            if item is not None:
                hooks.fail(item, error=HOOK_TIMEOUT, retry_in=240)

    # report-1 claims report jobs and dies; the manager takes them back once their lease is
    # out: the one-shot ones to dead, the other to ready.
    clock.at(T0 - 720)
    for region in ("north", "south"):
        reports.put(f"quarterly-report region={region} format=xlsx", priority=9, max_attempts=1)
    with acting_as("report-1:4303:12"):
        clock.at(T0 - 700)
        crashed = pq_core.open(path, queue="reports", clock=clock)
        crashed.get_many(3, lease=60)
    with acting_as("ops-1:4404:5"):
        clock.at(T0 - 560)
        pq_core.Manager(emails, interval=5).sweep()

    # Delayed jobs: tomorrow morning's digests and a report for the end of the day.
    clock.at(T0 - 400)
    emails.put_many(
        [{"to": f"{p}@example.com", "template": "digest"} for p in people[:3]], delay="20h"
    )
    reports.put("weekly-report region=eu format=pdf", delay="6h")

    if hostile:
        # The hostile job: its payload and error try markup, ANSI, OSC 52 and a bidi override.
        clock.at(T0 - 360)
        job = emails.put(HOSTILE, max_attempts=2, priority=9)
        with acting_as("mail-2:4202:91"):
            for step in (350, 340):
                clock.at(T0 - step)
                item = flaky.get(lease=60)
                if item is not None and item.id == job:
                    error = "\x1b[31mRenderError\x1b[0m: [link=file:///etc]x[/link]"
                    flaky.fail(item, error=error, retry_in=0)

    # An operator requeues the dead invoice (its amount fixed upstream) and deletes a stray job.
    clock.at(T0 - 300)
    emails.requeue([one_shot], actor="pq ada@ops-laptop")
    emails.delete([1], actor="pq-tui ada@ops-laptop")

    # Right now: mail-1 and thumb-1 hold jobs and heartbeat; mail-2 was last heard a while ago.
    with acting_as("mail-1:4101:77"):
        clock.at(T0 - 75)
        held = emails.get_many(2, lease=300)
        clock.at(T0 - 8)
        for item in held:
            emails.heartbeat(item)
    with acting_as("thumb-1:5120:31"):
        clock.at(T0 - 20)
        held = thumbs.get_many(1, lease=120)
        clock.at(T0 - 4)
        for item in held:
            thumbs.heartbeat(item)
    for q in (emails, thumbs, hooks, reports, flaky, crashed):
        q.close()
    _start_manager_and_kill(path, clock, "ops-1:4404:5", T0 - 3)


# A manager in its own process, seen by pq_core as `who`, at the fixed time `at`.
_MANAGER = """
import sys
import pq_core
from pq_core import identity
path, who, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
identity.worker_id = lambda: who
identity.HOST = who.split(":", 1)[0]
pq_core.Manager(pq_core.open(path, clock=lambda: at), interval=3600).run()
"""


def _start_manager_and_kill(path: str | os.PathLike[str], clock: Clock, who: str, at: float):
    """Leave a running manager's registration behind: a child process registers as the
    manager at `at` and is killed (SIGKILL) before it can note a clean stop, as if it were
    still running on another machine."""
    clock.at(at)
    child = subprocess.Popen(
        [sys.executable, "-c", _MANAGER, os.fspath(path), who, repr(at)],
        stdin=subprocess.DEVNULL,
    )
    watcher = pq_core.open(path, clock=lambda: at)
    try:
        deadline = time.monotonic() + 20
        while not any(w.kind == "manager" for w in watcher.workers()):
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the seed's manager did not register")
            time.sleep(0.005)
    finally:
        child.kill()
        child.wait()
        watcher.close()


# -- scenes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One picture: which store, how the app is opened, which keys, at what size."""

    name: str
    keys: tuple[str, ...] = ()
    size: tuple[int, int] = SIZE
    store: str = "operations"  # which seed: one of KINDS
    read_only: bool = False
    scope: str | None = None
    typed: str = ""
    then: tuple[str, ...] = ()

    def app(self, store: str | os.PathLike[str]) -> PqApp:
        queue = pq_core.open(
            store, queue=self.scope or "default", read_only=self.read_only, clock=lambda: T0
        )
        return PqApp(
            queue,
            lambda: T0,
            scope=self.scope,
            source="jobs.sqlite",
            read_only=self.read_only,
            actor=ACTOR,
        )

    def run_before(self) -> Callable[[object], Awaitable[None]]:
        async def drive(pilot) -> None:  # type: ignore[no-untyped-def]
            await settle(pilot)
            await press(pilot, *self.keys)
            if self.typed:
                await pilot.press(*self.typed)
                await settle(pilot)
            await press(pilot, *self.then)

        return drive


SCENES: dict[str, Scene] = {
    s.name: s
    for s in (
        Scene("main", size=(160, 45)),
        Scene("dead", keys=("5",)),
        Scene("scheduled", keys=("6",), size=(160, 45)),
        Scene("errors", keys=("e",), size=(160, 45)),
        Scene("error_group", keys=("e", "enter"), size=(160, 45)),
        Scene("bulk", keys=("5", "R"), size=(160, 45)),
        Scene("queues", keys=("Q", "j", "j", "P"), size=(160, 45)),
        Scene("detail", keys=("5", "enter")),
        Scene("confirm", keys=("5", "space", "space", "r")),
        Scene("purge", keys=("p", "backspace", "backspace"), typed="10m"),
        Scene("help", keys=("question_mark",)),
        Scene("read_only", read_only=True),
        Scene("search", keys=("slash",), typed="grace", then=("enter",)),
        Scene("queue", scope="webhooks"),
        Scene("empty", store="empty"),
        Scene("small", size=(80, 24)),
        Scene("medium", size=(120, 30)),
        Scene("sorted", keys=("greater_than_sign",) * 4),
        Scene("hostile", store="hostile"),
        Scene("hostile_detail", store="hostile", keys=("enter",)),
    )
}

KINDS = ("operations", "hostile", "empty")


def seeded_store(folder: str | os.PathLike[str], kind: str = "operations") -> str:
    """A store in `folder`, made if it is not there yet: the operations seed, the same with
    the hostile job, or new and empty."""
    if kind not in KINDS:
        raise ValueError(f"unknown seed {kind!r}: one of {', '.join(KINDS)}")
    path = os.path.join(folder, f"{kind}.sqlite")
    if not os.path.exists(path):
        if kind == "empty":
            pq_core.open(path, clock=lambda: T0).close()
        else:
            seed(path, hostile=kind == "hostile")
    return path


async def _picture(scene: Scene, store: str) -> str:
    app = scene.app(store)
    async with app.run_test(size=scene.size) as pilot:
        await scene.run_before()(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return app.export_screenshot(title=app.title, simplify=True)


def main(argv: list[str]) -> int:
    names = argv or list(SCENES)
    unknown = [n for n in names if n not in SCENES]
    if unknown:
        print(f"unknown scene(s): {', '.join(unknown)}; known: {', '.join(SCENES)}")
        return 2
    out = Path(__file__).resolve().parent.parent / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            scene = SCENES[name]
            seed_path = seeded_store(folder, scene.store)
            store = os.path.join(folder, f"scene-{name}.sqlite")  # a copy: a scene may change it
            for suffix in ("", "-wal"):
                if os.path.exists(f"{seed_path}{suffix}"):
                    shutil.copy2(f"{seed_path}{suffix}", f"{store}{suffix}")
            svg = asyncio.run(_picture(scene, store))
            (out / f"{name}.svg").write_text(svg, encoding="utf-8")
            print(f"screenshots/{name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
