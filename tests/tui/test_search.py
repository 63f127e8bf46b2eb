"""A text search read window by window of ids: the first page as soon as it is filled, a count
that says it is partial while the scan goes on, the exact count at the end."""

from __future__ import annotations

import pq_core
from pq_tui import search
from pq_tui.pilot import press, settle, type_text
from pq_tui.screenshots import SIZE, T0

JOBS = 600


def big_store(path: str) -> str:
    """600 jobs in two queues; every 7th mentions "needle", every 50th of those is dead."""
    q = pq_core.open(path, queue="emails", clock=lambda: T0)
    r = pq_core.open(path, queue="reports", clock=lambda: T0)
    for n in range(JOBS):
        text = f"job {n} needle" if n % 7 == 0 else f"job {n} hay"
        (r if n % 3 == 0 else q).put({"text": text, "n": n})
    q.close()
    r.close()
    return path


def subtitle(app) -> str:
    return str(app.dashboard.table.border_subtitle)


async def run_search(pilot, text: str) -> None:
    await press(pilot, "slash")
    await type_text(pilot, text)
    await press(pilot, "enter")


async def test_a_search_reads_window_by_window_and_counts_exactly(
    tmp_path, make_app, inspect, monkeypatch
):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 40)  # 600 ids: 15 windows
    path = big_store(str(tmp_path / "big.sqlite"))
    q = inspect(path)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_search(pilot, "needle")
        snapshot = app.dashboard.snapshot
        assert not snapshot.searching
        expected = q.count(queue=None, search="needle")
        assert snapshot.matches == expected == len(range(0, JOBS, 7))
        wanted = [i.id for i in q.items(None, 100, queue=None, search="needle")]
        assert app.dashboard.table.visible_ids() == wanted[:100]
        assert f"of {expected} matches" in subtitle(app)
        await press(pilot, "5")  # the status filter applies to the search, read the same way
        dead = q.count("dead", queue=None, search="needle")
        assert app.dashboard.snapshot.matches == dead
        await press(pilot, "1", "s")  # oldest first
        oldest = [i.id for i in q.items(None, 100, queue=None, search="needle", newest_first=False)]
        assert app.dashboard.table.visible_ids() == oldest
        assert app.dashboard.snapshot.matches == expected


async def test_a_search_shows_its_first_page_before_the_count_is_done(
    tmp_path, make_app, inspect, monkeypatch
):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 40)
    path = big_store(str(tmp_path / "big.sqlite"))
    q = inspect(path)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen: list[tuple[int, bool, str]] = []
        original = app.dashboard._apply

        def recording(snapshot):  # type: ignore[no-untyped-def]
            original(snapshot)
            seen.append((len(snapshot.rows), snapshot.searching, subtitle(app)))

        app.dashboard._apply = recording  # type: ignore[method-assign]
        await run_search(pilot, "hay")
        partial = [s for s in seen if s[1]]
        assert partial, "no snapshot while the scan went on"
        assert "searching…" in partial[0][2] and "≥" in partial[0][2]
        assert partial[0][0] < 100  # the first window, on screen before the page is full
        assert seen[-1][1] is False
        assert app.dashboard.snapshot.matches == q.count(queue=None, search="hay")


async def test_a_new_search_or_key_stops_the_old_scan(tmp_path, make_app, inspect, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 10)
    path = big_store(str(tmp_path / "big.sqlite"))
    q = inspect(path)
    app = make_app(path, scope="emails")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await type_text(pilot, "needle")
        await pilot.press("enter")  # no waiting: the next search comes at once
        await press(pilot, "slash")
        await type_text(pilot, "hay", erase=len("needle"))
        await press(pilot, "enter")
        await settle(pilot)
        assert app.dashboard.view.search == "hay"
        assert app.dashboard.snapshot.matches == q.count(queue="emails", search="hay")
        wanted = [i.id for i in q.items(None, 100, queue="emails", search="hay")]
        assert app.dashboard.table.visible_ids() == wanted
        await press(pilot, "escape")
        assert app.dashboard.snapshot.matches is None
        assert app.store._scan is None


async def test_a_finished_search_keeps_up_with_the_store(tmp_path, make_app, inspect, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 40)
    path = big_store(str(tmp_path / "big.sqlite"))
    q = inspect(path)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_search(pilot, "needle")
        newest = app.dashboard.table.visible_ids()[0]
        emails = pq_core.open(path, queue="emails", clock=lambda: T0)
        emails.put({"text": "a new needle"})
        emails.close()
        q.delete(newest)
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.snapshot.matches == q.count(queue=None, search="needle")
        wanted = [i.id for i in q.items(None, 100, queue=None, search="needle")]
        assert app.dashboard.table.visible_ids() == wanted
