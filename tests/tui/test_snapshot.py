"""A snapshot reads one window of jobs, however it gets it, exactly as `items()` would list
them: merged from per-(queue, status) reads near the ends, read backwards in the far half."""

from __future__ import annotations

import pytest

import pq_core
from pq_core import Status
from pq_tui.screenshots import T0
from pq_tui.snapshot import PAGE, View, take


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("mixed") / "mixed.sqlite")
    emails = pq_core.open(path, queue="emails", clock=lambda: T0)
    reports = pq_core.open(path, queue="reports", clock=lambda: T0)
    for round_ in range(4):
        emails.put_many([f"e{round_}-{n}" for n in range(400)])
        reports.put_many([f"r{round_}-{n}" for n in range(100)])
        emails.done_many(emails.get_many(250))
        for item in reports.get_many(30):
            reports.fail(item, error="no", retry_in=0)
        emails.get_many(5)
    for q in (emails, reports):
        q.close()
    return path


@pytest.mark.parametrize("scope", [None, "emails"])
@pytest.mark.parametrize("status", [None, Status.READY, Status.DONE, Status.IN_PROGRESS])
@pytest.mark.parametrize("newest_first", [True, False])
def test_a_window_lists_what_items_lists(mixed_store, scope, status, newest_first):
    q = pq_core.open(mixed_store, queue=scope or "default", clock=lambda: T0)
    total = q.count(status, queue=scope)
    for offset in sorted({0, 1, 250, 550, total // 2, total // 2 + 1, total - 120, total - 1}):
        if offset < 0:
            continue
        view = View(status=status, newest_first=newest_first, offset=offset)
        snap = take(q, view, scope, lambda: T0)
        expected = q.items(status, PAGE, offset, queue=scope, newest_first=newest_first)
        assert [r.id for r in snap.rows] == [i.id for i in expected], (offset, total)
        assert snap.total == total
    q.close()
