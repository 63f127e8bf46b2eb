"""What the store thread tells the screens. Each message carries immutable answers only (a
Snapshot, an Item, a count, a line of text), so a screen can keep them without copying."""

from __future__ import annotations

from textual.message import Message

from pq_core import Item, Status
from pq_tui.snapshot import Snapshot, View


class Refreshed(Message):
    """A snapshot of the dashboard's view is ready."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class RefreshFailed(Message):
    """A refresh could not read the store; `busy` when it was locked past the busy timeout."""

    def __init__(self, error: str, busy: bool) -> None:
        super().__init__()
        self.error = error
        self.busy = busy


class JobRead(Message):
    """One job, read in full with its history (to open it, or to keep an open one live).
    `item` is None when the read failed: `missing` when the job no longer exists, else the
    store could not answer; `error` says which, in words."""

    def __init__(
        self, job_id: int, item: Item | None, error: str = "", *, missing: bool = False
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.item = item
        self.error = error
        self.missing = missing


class ActionDone(Message):
    """An action on the store finished: which (`kind`: "requeue", "delete", …), what to tell
    the operator, and whether it failed."""

    def __init__(self, text: str, failed: bool = False, kind: str = "") -> None:
        super().__init__()
        self.text = text
        self.failed = failed
        self.kind = kind


class PurgeCounted(Message):
    """A purge's dry run for (status, older_than): a count, or why there is none."""

    def __init__(self, status: Status, older_than: str, count: int | None, error: str = ""):
        super().__init__()
        self.status = status
        self.older_than = older_than
        self.count = count
        self.error = error


class Listed(Message):
    """The rows of a listing screen (error groups, queues), or why there are none."""

    def __init__(self, rows: tuple[object, ...], error: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.error = error


class MatchCounted(Message):
    """How many jobs a bulk action (`kind`: "requeue" or "delete") on everything `view` shows
    would change, or why there is no count."""

    def __init__(self, kind: str, view: View, count: int | None, error: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.view = view
        self.count = count
        self.error = error
