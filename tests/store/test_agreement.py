"""Agreement (issue 9 point 7): one scripted sequence of store calls, run on SQLite and on
PostgreSQL, gives the same outcomes, counters and per-minute figures after every step.
`done` per minute means completions per minute on both: purging the jobs does not undo them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stores import postgres_store

from pq_core.store.base import Held, JobFilter, Outcome, Store, Verdict

from .conftest import EVERY_MINUTE, START, Backend, FakeClock, PostgresBackend, job

MINUTE = int(START // 60)


@pytest.fixture
def both(tmp_path: Path) -> Iterator[dict[str, Backend]]:
    with postgres_store() as url:
        backends = {
            "sqlite": Backend(str(tmp_path / "jobs.sqlite"), FakeClock()),
            "postgres": PostgresBackend(url),
        }
        try:
            yield backends
        finally:
            for backend in backends.values():
                backend.close()


class Script:
    """The scripted sequence on one backend, noting what each step saw. Job ids are noted as
    the order they were handed out in, so the two backends' ids need not be equal."""

    def __init__(self, backend: Backend) -> None:
        self.store: Store = backend.open()
        self.clock = backend.clock
        self.ids: dict[int, int] = {}  # job id → its number in the order of insertion
        self.seen: list[tuple[str, Any]] = []

    def n(self, job_id: int) -> int:
        return self.ids.setdefault(job_id, len(self.ids) + 1)

    def insert(self, *jobs: Any) -> list[int]:
        ids = self.store.insert(list(jobs))
        return [self.n(i) for i in ids] and ids

    def claim(self, queue: str, limit: int, lease: float = 60, token: str = "t") -> list:
        rows, _ = self.store.claim(queue, limit, lease, "host:1:1:boot:ns", token)
        return rows

    def note(self, step: str, *outcomes: Any) -> None:
        store = self.store
        stats = store.stats(EVERY_MINUTE)
        events = store.events(None, 100, 0)
        self.seen.append(
            (
                step,
                {
                    "outcomes": [o.value if isinstance(o, Outcome) else o for o in outcomes],
                    "counts": {f"{q}/{s}": n for (q, s), n in sorted(stats.counts.items()) if n},
                    "per_minute": {
                        f"{q}/{kind}/{m - MINUTE}": n
                        for (q, kind, m), n in sorted(stats.per_minute.items())
                    },
                    "scheduled": dict(sorted(stats.scheduled.items())),
                    "oldest_ready": {q: t - START for q, t in sorted(stats.oldest_ready.items())},
                    "paused": sorted(stats.paused),
                    "count": [
                        store.count(where)
                        for where in (
                            JobFilter(),
                            JobFilter(queue="q", statuses=("ready", "in_progress")),
                            JobFilter(scheduled=True),
                            JobFilter(search="payload 1"),
                            JobFilter(error="boom #"),
                        )
                    ],
                    "events": [
                        (e.kind, e.queue, e.count, [self.n(i) for i in json.loads(e.job_ids)])
                        for e in events
                    ],
                    "errors": [
                        (e.signature, e.count, e.dead, e.queues) for e in store.errors(None, 10)
                    ],  # fmt: skip
                    "held": len(store.workers().held),
                    "check": store.check(),
                },
            )
        )

    def run(self) -> list[tuple[str, Any]]:
        s, clock = self.store, self.clock
        ids = self.insert(*[job(f"payload {i}") for i in range(12)])
        self.insert(*[job(f"other {i}", "other") for i in range(3)])
        [later] = self.insert(job("later", delay=120))
        [keyed] = self.insert(job("keyed", dedup_key="k"))
        self.note("inserted", s.insert([job("keyed again", dedup_key="k")]) == [keyed])

        five = self.claim("q", 5, token="t1")
        self.note("claimed five", [self.n(r.id) for r in five])
        self.note("done five", *s.complete([(r.id, r.token) for r in five]))

        three = self.claim("q", 3, token="t2")
        outcomes = s.complete([(r.id, r.token) for r in three[:2]])
        failed = s.fail(three[2].id, "t2", "ready", 30, "boom 7", "boom #", "c")
        clock.advance(30)
        self.note("two more done, one failed", *outcomes, *failed)

        clock.advance(1)
        purged = s.purge("q", "done", 0, 100, "op")
        self.note("done purged", purged)  # completions per minute stay 7

        clock.advance(60)
        held = self.claim("q", 2, lease=10, token="t3")
        clock.advance(11)

        def decide(hs: list[Held]) -> list[Verdict]:
            return [Verdict(h, "dead" if h.id == held[0].id else "ready", "lease expired")
                    for h in hs]  # fmt: skip

        verdicts = s.take_back([], decide, "manager")
        self.note("taken back", sorted((self.n(v.held.id), v.status) for v in verdicts))

        late = s.complete([(held[1].id, "t3"), (held[0].id, "made-up"), (10_000, "t")])
        self.note("late acks", *late)

        again = self.claim("q", 1, token="t4")
        stale = [
            s.complete([(again[0].id, "t3")])[0],
            s.fail(again[0].id, "t1", "ready", 0, "x", "x", "c")[0],
            s.extend(again[0].id, "t3", 60)[0],
            s.release(again[0].id, "t3"),
            s.extend(again[0].id, "t4", 60),
            s.release(again[0].id, "t4"),
        ]
        self.note("stale and current tokens", *stale)

        self.note(
            "requeued", [self.n(i) for i in s.requeue([held[0].id, ids[0]], True, "op", None)]
        )
        self.note("run now", [self.n(i) for i in s.run_now([later], "op", "q")])
        s.set_paused("q", True, "op")
        self.note("paused", self.claim("q", 5))
        s.set_paused("q", False, "op")
        clock.advance(5)
        rows, acks = s.claim("q", 3, 60, "w", "t5", [])
        rows2, acks2 = s.claim("q", 2, 60, "w", "t6", [(r.id, "t5") for r in rows])
        self.note("resumed, claimed with a fused ack", len(rows), *acks2, len(rows2))
        s.fail(rows2[0].id, "t6", "dead", 0, "boom 9", "boom #", "c")
        self.note("deleted", [self.n(i) for i in s.delete([rows2[1].id, keyed], "op", None)])
        self.note("set status", s.set_status(ids[9], "done", "op"))
        clock.advance(3600)
        s.maintain(1800, 600)
        self.note("maintained")
        return self.seen


def test_both_backends_agree_on_outcomes_counters_and_per_minute_figures(
    both: dict[str, Backend],
) -> None:
    sqlite, postgres = (Script(both[name]).run() for name in ("sqlite", "postgres"))
    assert [step for step, _ in sqlite] == [step for step, _ in postgres]
    for (step, seen), (_, other) in zip(sqlite, postgres, strict=True):
        assert seen == other, f"the backends disagree after {step!r}"
    done = [seen["per_minute"].get("q/done/0") for _, seen in sqlite]
    assert done[1:5] == [None, 5, 7, 7]  # completions per minute, purged or not
    assert all(seen["check"] == [] for _, seen in sqlite)
