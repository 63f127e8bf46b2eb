"""Moving around the dashboard: vim keys, half pages, panels, sorting, copying, escape, zoom,
and the one actions table that the keys, the help and the command palette all come from."""

from __future__ import annotations

import pytest
from rich.console import Console

import pq_core
from pq_core import Status
from pq_tui import actions
from pq_tui.display import payload_text
from pq_tui.pilot import press, settle, type_text
from pq_tui.screens.help import HelpScreen
from pq_tui.screenshots import SIZE, T0
from pq_tui.snapshot import COLUMNS, View


def ids(app) -> list[int]:
    return app.dashboard.table.visible_ids()


def text_of(renderable) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


async def test_j_k_move_like_the_arrows_and_g_G_go_to_the_ends(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.dashboard.table
        await press(pilot, "j", "j", "j")
        assert table.cursor_row == 3
        await press(pilot, "k")
        assert table.cursor_row == 2
        await press(pilot, "G")
        assert table.highlighted_id == min(ids(app))
        await press(pilot, "g")
        assert table.cursor_row == 0 and table.highlighted_id == max(ids(app))


async def test_ctrl_d_and_ctrl_u_move_half_a_page(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.dashboard.table
        half = (table.scrollable_content_region.height - 1) // 2
        assert half >= 5
        await press(pilot, "ctrl+d")
        assert table.cursor_row == half
        await press(pilot, "ctrl+d")
        assert table.cursor_row == 2 * half
        await press(pilot, "ctrl+u", "ctrl+u", "ctrl+u")
        assert table.cursor_row == 0


async def test_the_cursor_stays_where_the_operator_moved_it_even_if_a_refresh_is_quicker(
    store, make_app
):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # no waiting for the highlight messages
        app.dashboard.request_refresh()
        await settle(pilot)
        assert app.dashboard.table.cursor_row == 2
        assert not app.dashboard.following


async def test_tab_goes_through_the_panels_and_each_scrolls(store, make_app):
    emails = pq_core.open(store, queue="emails", clock=lambda: T0)
    for _ in range(4):  # more operator events than the activity panel shows
        emails.pause(actor="pq ada@ops-laptop")
        emails.resume(actor="pq ada@ops-laptop")
    emails.close()
    app = make_app(store)
    async with app.run_test(size=(150, 32)) as pilot:  # low: the panels show 5 lines
        await settle(pilot)
        dash = app.dashboard
        assert app.focused is dash.table
        await press(pilot, "tab")
        activity = dash.query_one("#activity-box")
        assert app.focused is activity
        assert activity.max_scroll_y > 2  # the seed has more events than the panel shows
        await press(pilot, "j", "j")
        assert activity.scroll_y == 2
        await press(pilot, "G")
        assert activity.scroll_y == activity.max_scroll_y
        await press(pilot, "g")
        assert activity.scroll_y == 0
        await press(pilot, "ctrl+d")
        assert activity.scroll_y > 0
        row = dash.table.cursor_row
        await press(pilot, "tab")
        assert app.focused is dash.query_one("#workers-box")
        await press(pilot, "tab")
        assert app.focused is dash.table
        assert dash.table.cursor_row == row  # the panels' keys did not move the jobs
        await press(pilot, "shift+tab")
        assert app.focused is dash.query_one("#workers-box")


async def test_sort_keys_cycle_the_column_and_s_reverses_it(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dash = app.dashboard
        order = [key for key, _ in COLUMNS]
        assert dash.sort_column == "id"
        await press(pilot, "greater_than_sign")
        assert dash.sort_column == order[1]
        await press(pilot, "less_than_sign", "less_than_sign")
        assert dash.sort_column == order[-1]  # wraps around
        while dash.sort_column != "tries":
            await press(pilot, "greater_than_sign")
        items = {i.id: i for i in q.items(limit=100, queue=None)}
        tries = [(items[i].attempts, -items[i].max_attempts) for i in ids(app)]
        assert tries == sorted(tries, reverse=True)
        assert "by tries ↓" in str(dash.table.border_title)
        assert dash.table.columns["tries"].label.plain == "tries↓"
        await press(pilot, "s")
        tries = [(items[i].attempts, -items[i].max_attempts) for i in ids(app)]
        assert tries == sorted(tries)
        assert "by tries ↑" in str(dash.table.border_title)
        while dash.sort_column != "id":
            await press(pilot, "greater_than_sign")
        assert ids(app) == [i.id for i in q.items(limit=100, queue=None)]
        await press(pilot, "s")
        assert ids(app) == [i.id for i in q.items(limit=100, queue=None, newest_first=False)]


async def test_y_copies_the_id_and_shift_y_the_whole_payload(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j")
        job = q.item(app.dashboard.table.highlighted_id)
        await press(pilot, "y")
        assert app.clipboard == str(job.id)
        await press(pilot, "Y")
        assert app.clipboard == payload_text(job.payload)
        await press(pilot, "5", "space", "space", "y")  # marked jobs: their ids
        assert app.clipboard == " ".join(str(i) for i in sorted(app.dashboard.marks))
        notices = [n.message for n in app._notifications]
        assert any(m.startswith("copied 2 job ids") for m in notices)


async def test_escape_clears_one_thing_per_press_then_leaves_the_queue(store, make_app, inspect):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await type_text(pilot, "ada")
        await press(pilot, "escape")  # first, escape closes the search box without applying
        assert not app.dashboard.view.search
        await press(pilot, "slash")
        await type_text(pilot, "ada")
        await press(pilot, "enter", "space", "space")
        assert app.dashboard.view.search and len(app.dashboard.marks) == 2
        await press(pilot, "escape")  # the marks first
        assert app.dashboard.marks == {} and app.dashboard.view.search == "ada"
        assert "marked" not in str(app.dashboard.table.border_subtitle)
        await press(pilot, "escape")  # then the text filter
        assert app.dashboard.view.search == ""
        assert ids(app) == [i.id for i in q.items(limit=100, queue=None)]
        await press(pilot, "Q", "j", "enter", "5")  # one queue, dead jobs
        scope = app.dashboard.view.scope
        assert scope is not None and app.dashboard.view.status == Status.DEAD
        await press(pilot, "escape")  # then the status filter
        assert app.dashboard.view.status is None and app.dashboard.view.scope == scope
        assert ids(app) == [i.id for i in q.items(limit=100, queue=scope)]
        await press(pilot, "escape")  # then the queue
        assert app.dashboard.view.scope is None
        assert ids(app) == [i.id for i in q.items(limit=100, queue=None)]
        await press(pilot, "escape")  # nothing left to undo
        assert app.dashboard.view == View()


async def test_z_hides_and_shows_the_panels_and_a_short_terminal_starts_without(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dash = app.dashboard
        bottom = dash.query_one("#bottom")
        tall = dash.table.size.height
        assert bottom.display and not dash.zoomed
        await press(pilot, "z")
        await pilot.pause()
        assert dash.zoomed and not bottom.display
        assert dash.table.size.height > tall
        await press(pilot, "z")
        await pilot.pause()
        assert bottom.display and dash.table.size.height == tall
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        dash = app.dashboard
        assert dash.zoomed and not dash.query_one("#bottom").display
        await press(pilot, "z")
        await pilot.pause()
        assert dash.query_one("#bottom").display


async def test_at_80x24_ten_job_rows_show_and_the_error_column_is_on_screen(store, make_app):
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.dashboard.table
        rows_on_screen = table.scrollable_content_region.height - 1  # less the header
        assert rows_on_screen >= 10
        screen = text_of(app.screen._compositor.render_update(full=True))  # noqa: SLF001
        assert "last error" in screen
        # the hostile job's error starts on screen, its end past the edge, reachable
        columns = table.ordered_columns
        before = [c for c in columns[: [c.key.value for c in columns].index("error")]]
        error_x = sum(c.get_render_width(table) for c in before)
        assert error_x < 80 - 20
        await press(pilot, "l", "l", "l")  # the columns past the edge are reachable
        assert table.scroll_x == 3
        app.dashboard.request_refresh()
        await settle(pilot)
        assert table.scroll_x == 3  # and a refresh does not scroll back
        await press(pilot, "h")
        assert table.scroll_x == 2


async def test_the_error_gets_its_room_before_the_payload(store, make_app, inspect):
    app = make_app(store)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        table = app.dashboard.table
        widths = {c.key.value: c.get_render_width(table) for c in table.ordered_columns}
        assert widths["error"] >= 40 and widths["error"] > widths["payload"]
        assert sum(widths.values()) <= table.size.width  # every column on screen at 160


async def test_keys_help_and_palette_come_from_one_table(store, make_app):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bound = {b.action: b.key for b in app.dashboard.BINDINGS}  # type: ignore[union-attr]
        for action in actions.DASHBOARD:
            assert bound[action.action] == action.keys
        titles = {c.title for c in app.get_system_commands(app.screen)}
        listed = {a.title for a in actions.DASHBOARD if a.title}
        assert (
            {"Requeue jobs", "Copy job ids", "Sort by the next column"}
            <= titles
            <= (listed | {"Theme", "Quit", "Keys", "Screenshot", "Maximize", "Minimize"})
        )
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = text_of(app.screen.query_one("Static").content)
        for action in actions.DASHBOARD + actions.DETAIL:
            assert action.description in " ".join(help_text.split()), action.action


async def test_help_and_palette_leave_out_changes_in_read_only_mode(store, make_app):
    app = make_app(store, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Requeue jobs" not in titles and "Copy job ids" in titles
        await press(pilot, "question_mark")
        help_text = text_of(app.screen.query_one("Static").content)
        assert "requeue" not in help_text.lower().replace("read-only: requeue", "")
        assert "copy the job's id" in help_text


@pytest.mark.parametrize("size", [(120, 30), (160, 45)])
async def test_nothing_is_cut_mid_word_in_the_footer_and_the_top_lines(store, make_app, size):
    app = make_app(store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = text_of(app.screen._compositor.render_update(full=True))  # noqa: SLF001
        lines = screen.splitlines()
        footer = lines[size[1] - 1]
        for action in actions.DASHBOARD:
            if action.label and action.footer_group is None:
                assert action.label in footer, (action.label, footer)
        assert "manager ● running" in screen


async def test_the_new_store_state_shows_after_an_action_from_the_palette(store, make_app):
    q = pq_core.open(store, clock=lambda: T0)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        job = app.dashboard.table.highlighted_id
        await press(pilot, "ctrl+p")
        await type_text(pilot, "requeue jobs")
        await press(pilot, "enter", "y")
        assert not app.dialog_open
    assert q.item(job).status == Status.READY
    q.close()


async def test_errors_view_opened_again_shows_its_last_rows_until_the_store_answers(
    store, make_app, inspect
):
    q = inspect(store)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        first = list(app.screen.table.rows)
        assert first
        await press(pilot, "escape")
        await pilot.press("e")  # no waiting for the store: the last rows are drawn at once
        screen = app.screen
        assert list(screen.table.rows) == first
        if not screen.reads:
            assert "updating…" in str(screen.table.border_subtitle)
        await settle(pilot)
        assert screen.reads == 1
        assert [screen.key(r) for r in screen.rows] == [g.signature for g in q.errors(queue=None)]
        assert "updating…" not in str(screen.table.border_subtitle)
