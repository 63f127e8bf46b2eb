"""Every dashboard screen, drawn at a fixed time from a fixed store, compared with the approved
SVG. The same scenes make screenshots/ (`uv run python -m pq_tui.screenshots`); after an
intended change, approve with `uv run pytest tests/tui --snapshot-update` and regenerate."""

from __future__ import annotations

import pytest

from pq_tui.screenshots import SCENES


@pytest.mark.parametrize("name", list(SCENES))
def test_screen_looks_as_approved(name: str, seeded, snap_compare) -> None:
    scene = SCENES[name]
    store = seeded(scene.store)
    assert snap_compare(scene.app(store), terminal_size=scene.size, run_before=scene.run_before())
