"""Driving the dashboard headless (tests, screenshots, the benchmark): wait for the store.

The App answers keys at once but reads and writes the store on its own thread, so a headless
driver that presses a key and looks at the screen must first let that thread catch up.
`settle` returns once every store request has been served and every answer has been handled,
with no sleeping on a guess.
"""

from __future__ import annotations

import asyncio
import time

from textual.pilot import Pilot

from pq_tui.app import PqApp


class StoreTimeout(AssertionError):
    """The store thread did not catch up in time."""


async def settle(pilot: Pilot, timeout: float = 10.0) -> None:
    """Wait until the app's store thread is idle and its answers have been applied."""
    app = pilot.app
    assert isinstance(app, PqApp)
    deadline = time.monotonic() + timeout
    store = app.store
    while True:
        while not store.idle:
            if time.monotonic() > deadline:
                raise StoreTimeout(f"store thread still busy after {timeout}s")
            await asyncio.sleep(0.001)
        submitted = store.submitted
        await pilot.pause()  # handle the answers, which may ask for more
        if store.idle and store.submitted == submitted:
            return


async def press(pilot: Pilot, *keys: str) -> None:
    """Press keys one at a time, letting the store answer after each."""
    app = pilot.app
    assert isinstance(app, PqApp)
    for key in keys:
        asked = app.store.submitted
        await pilot.press(key)  # returns once the key's handlers have run
        if app.store.submitted != asked or not app.store.idle:
            await settle(pilot)  # the key asked the store something: wait for the answer


async def type_text(pilot: Pilot, text: str, *, erase: int = 0) -> None:
    """Erase `erase` characters and type `text` into the focused input, then let the store
    answer once (not after every character)."""
    await pilot.press(*["backspace"] * erase, *text)
    await settle(pilot)
