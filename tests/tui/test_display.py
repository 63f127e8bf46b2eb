"""What a job carries is shown as text: markup, ANSI and OSC sequences, control and bidi
characters come out as visible escapes and are never interpreted."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rich.console import Console

from pq_core import Item, Status
from pq_tui.display import (
    ESCAPE_STYLE,
    error_line,
    event_line,
    inert,
    payload_text,
    span,
    sparkline,
)
from pq_tui.snapshot import COLUMNS, job_row


def rendered(text) -> str:
    """The characters a terminal would receive for `text`."""
    console = Console(width=400, force_terminal=True, color_system="truecolor")
    with console.capture() as capture:
        console.print(text)
    return capture.get()


def test_markup_is_shown_as_typed():
    text = inert("[bold red]hi[/] [link=https://example.com]x[/link]")
    assert text.plain == "[bold red]hi[/] [link=https://example.com]x[/link]"
    assert text.spans == []


def test_ansi_and_osc_sequences_become_visible_escapes():
    text = inert("\x1b[31mred\x1b[0m \x1b]52;c;aGk=\x07 \x1b]8;;http://x\x1b\\link")
    assert text.plain == ("\\x1b[31mred\\x1b[0m \\x1b]52;c;aGk=\\x07 \\x1b]8;;http://x\\x1b\\link")
    assert {str(s.style) for s in text.spans} == {ESCAPE_STYLE}
    out = rendered(text)
    assert "\x07" not in out
    assert re.findall(r"\x1b(?!\[[0-9;]*m)", out) == []  # no escape but our own colours


def test_control_bidi_and_zero_width_characters_are_escaped():
    text = inert("a\x00b\u202ec\u200bd\x7fe\x9bf\r\t\n")
    assert text.plain == "a\\x00b\\u202ec\\u200bd\\x7fe\\x9bf\\r\\t\\n"


def test_multiline_keeps_newlines_and_tabs_as_layout():
    text = inert("line 1\n\tline 2\x1b[2J", multiline=True)
    assert text.plain == "line 1\n\tline 2\\x1b[2J"


def test_long_values_are_cut_with_an_ellipsis():
    text = inert("x" * 50, limit=10)
    assert text.plain == "x" * 10 + "…"


def test_payloads_as_text():
    assert payload_text("plain") == "plain"
    assert payload_text(b"\x89PNG\r\n") == "\\x89PNG\r\n"
    assert payload_text({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert payload_text({"a": 1}, pretty=True) == '{\n  "a": 1\n}'


def test_a_rows_cells_are_inert_too():
    at = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    item = Item(
        7, "q\x1b[1m", "[b]\x1b[31mx", Status.DEAD, 0, 3, 3, at, at, at, None,
        "host\x1b]0;pwned\x07:12:34", "Traceback…\nValueError: \x1b[2Jboom", None,
    )  # fmt: skip
    row = job_row(item, at.timestamp() + 90)
    plain = dict(zip((key for key, _ in COLUMNS), (cell.plain for cell in row.cells), strict=True))
    assert plain["queue"] == "q\\x1b[1m"
    assert "\\x1b]0;pwned\\x07" in plain["worker"]
    assert plain["payload"] == "[b]\\x1b[31mx"
    assert plain["error"] == "… ValueError: \\x1b[2Jboom"
    assert plain["age"] == "1m30s"
    for cell in row.cells:
        assert "\x1b" not in cell.plain and "\x07" not in cell.plain


def test_durations_and_sparklines():
    assert [span(s) for s in (5, 65, 3600 * 2 + 60, 86400 * 3 + 7200)] == [
        "5s", "1m05s", "2h01m", "3d02h",
    ]  # fmt: skip
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 1, 2], top=8) == "▁▂▃"  # one scale shared by several rows
    assert sparkline([9], top=8) == "█"


def test_an_event_shows_the_meaningful_line_of_a_traceback():
    traceback = (
        "attempt 2/3: Traceback (most recent call last):\n"
        '  File "render.py", line 12, in render\n'
        "KeyError: 'first_name'\n"
    )
    assert event_line(traceback) == "attempt 2/3: … KeyError: 'first_name'"
    assert event_line("requeued 2 job(s): 4, 5") == "requeued 2 job(s): 4, 5"
    assert event_line("two\nlines") == "two … lines"
    assert error_line("Traceback (most recent call last):\n  x\nValueError: no") == (
        "… ValueError: no"
    )
