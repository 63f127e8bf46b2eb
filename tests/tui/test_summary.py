"""The summary's throughput: one scale for every row, whole minutes only, and the "last"
figure is the last bar's minute; failed per minute beside done."""

from __future__ import annotations

from pq_core import QueueStats, Status
from pq_tui.display import sparkline
from pq_tui.snapshot import Snapshot, View
from pq_tui.widgets.summary import Throughput

COUNTS = dict.fromkeys(Status, 1)


def test_the_running_minute_is_left_out_so_the_last_bar_is_the_last_figure():
    qs = QueueStats("emails", COUNTS, None, (1, 2, 3, 5, 9))  # 9: the minute still running
    throughput = Throughput.of(qs)
    assert throughput.done == [1, 2, 3, 5]
    assert throughput.last_done == 5
    assert sparkline(throughput.done)[-1] == "█"  # the last bar is the "last" figure's minute
    assert throughput.last_failed == 0  # no failures reported


def test_rows_are_summed_on_the_newest_minute():
    a = QueueStats("a", COUNTS, 5.0, (1, 1, 1, 0))
    b = QueueStats("b", COUNTS, 9.0, (4, 4, 0))
    total = Throughput.of(a, b)
    assert total.done == [1, 5, 5]
    assert total.oldest_ready_age == 9.0
    assert total.counts[Status.READY] == 2


async def test_one_scale_for_every_row_and_failed_per_minute_beside_done(store, make_app):
    app = make_app(store)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        queues = (
            QueueStats("emails", COUNTS, None, (0,) * 27 + (40, 20, 3), (0,) * 28 + (2, 0)),
            QueueStats("webhooks", COUNTS, None, (0,) * 27 + (4, 2, 1), (0,) * 28 + (1, 0)),
        )
        snapshot = Snapshot(View(), None, 0.0, queues, (), 0, (), (), 0.0)  # type: ignore[arg-type]
        summary = app.dashboard.query_one("#summary")
        summary.show(snapshot)
        table = summary.content.renderables[0]
        headers = [str(c.header) for c in table.columns]
        assert "done/min · 29 min · █ = 44" in headers  # the "all" row's 44 is the top
        assert "failed" in headers
        cells = {name: [str(c) for c in column._cells] for name, column in
                 zip(headers, table.columns, strict=True)}  # fmt: skip
        bars = cells["done/min · 29 min · █ = 44"]
        # one scale: webhooks' 4 is a low bar, not a full one as on a scale of its own
        assert bars[1][-2] == sparkline([4], top=44) and bars[2][-2] == "█"
        assert cells["last"] == ["20/min", "2/min", "22/min"]
        assert cells["failed"] == ["2/min", "1/min", "3/min"]
