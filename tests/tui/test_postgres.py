"""`pq-tui postgresql://…`: the dashboard on a PostgreSQL store, and no password in anything it
shows or prints. The tests that need a server run against the one PQ_TEST_POSTGRES_URL names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stores import postgres_store

import pq_core
from pq_core import Status
from pq_tui import __main__ as cli
from pq_tui import search
from pq_tui.app import PqApp
from pq_tui.pilot import press, settle, type_text
from pq_tui.screenshots import ACTOR, SIZE


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a schema of this test's own on the server, dropped afterwards."""
    with postgres_store() as url:
        yield url


def test_passwords_are_redacted_in_urls_and_connection_strings():
    assert cli.redact("postgresql://ada:s3cr@t@db:5432/jobs") == "postgresql://ada:***@db:5432/jobs"
    assert cli.redact("postgres://db/jobs?password=s3cret&sslmode=require") == (
        "postgres://db/jobs?password=***&sslmode=require"
    )
    assert cli.redact("host=db password='a b' user=ada") == "host=db password=*** user=ada"
    assert cli.redact("postgresql://db:5432/jobs") == "postgresql://db:5432/jobs"
    assert cli.redact("jobs.sqlite") == "jobs.sqlite"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ada:s3cret@127.0.0.1:1/jobs",  # nothing listens on port 1
        "postgresql://ada@127.0.0.1:1/jobs?password=s3cret",
    ],
)
def test_a_store_that_cannot_be_reached_is_one_line_without_the_password(url, capsys):
    code = cli.main([url])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pq-tui: ") and err.count("\n") == 1
    assert "s3cret" not in err


def test_a_postgres_url_opens_the_dashboard_on_that_database(postgres_url, monkeypatch, capsys):
    producer = pq_core.open(postgres_url, queue="emails")
    producer.put({"to": "ada@example.com"})
    producer.close()
    seen = {}

    def fake_run(self: PqApp) -> None:
        seen.update(source=self.source, jobs=[i.payload for i in self.queue.items(queue=None)])

    monkeypatch.setattr(PqApp, "run", fake_run)
    assert cli.main([postgres_url, "--read-only"]) == 0
    assert seen["jobs"] == [{"to": "ada@example.com"}]
    assert seen["source"].startswith("postgresql://")
    assert capsys.readouterr().err == ""


async def test_the_dashboard_reads_and_requeues_on_postgres(postgres_url):
    q = pq_core.open(postgres_url, queue="emails")
    job = q.put({"to": "ada@example.com"}, max_attempts=1)
    item = q.get()
    assert item is not None and item.id == job
    q.fail(item, error="smtplib.SMTPServerDisconnected: Connection unexpectedly closed")
    store = cli.open_store(postgres_url, None, False)
    app = PqApp(store, source=cli.store_name(store, postgres_url), actor=ACTOR)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.dashboard.table.visible_ids() == [job]
        await press(pilot, "r", "y")
        assert app.dashboard.snapshot.rows[0].status == Status.READY
    assert q.item(job).status == Status.READY
    assert (q.events(1)[0].kind, q.events(1)[0].actor) == ("requeue", ACTOR)
    q.close()


async def test_errors_bulk_scheduled_and_pause_on_postgres(postgres_url):
    q = pq_core.open(postgres_url, queue="emails")
    dead = []
    for n in range(3):
        q.put({"to": f"user{n}@example.com"}, max_attempts=1)
        item = q.get()
        assert item is not None
        q.fail(item, error=f"TimeoutError: smtp did not answer in {30 + n}s")
        dead.append(item.id)
    later = q.put({"to": "later@example.com"}, delay="1h")
    store = cli.open_store(postgres_url, None, False)
    app = PqApp(store, source=cli.store_name(store, postgres_url), actor=ACTOR, refresh_every=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "e", "enter")  # one group: the numbers are normalised
        assert sorted(app.dashboard.table.visible_ids()) == dead
        await press(pilot, "R", "y")
        await press(pilot, "escape", "6", "n")  # the delayed job, run now
        await press(pilot, "Q", "j", "P")
    assert [q.item(i).status for i in dead] == [Status.READY] * 3
    assert q.count("ready", scheduled=True) == 0 and q.item(later).status == Status.READY
    assert q.is_paused()
    q.close()


async def test_a_text_search_reads_window_by_window_on_postgres(postgres_url, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 25)  # 300 ids: 12 windows
    q = pq_core.open(postgres_url, queue="emails")
    q.put_many([{"text": f"job {n} " + ("needle" if n % 2 else "hay")} for n in range(300)])
    store = cli.open_store(postgres_url, None, False)
    app = PqApp(store, source=cli.store_name(store, postgres_url), actor=ACTOR, refresh_every=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await type_text(pilot, "needle")
        await press(pilot, "enter")
        snapshot = app.dashboard.snapshot
        assert not snapshot.searching
        assert snapshot.matches == q.count(queue=None, search="needle") == 150
        wanted = [i.id for i in q.items(None, 100, queue=None, search="needle")]
        assert app.dashboard.table.visible_ids() == wanted
    q.close()
