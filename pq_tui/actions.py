"""Every key of the dashboard, once (as Harlequin's actions.py): the screens' BINDINGS, the help
screen and the command palette are all generated from these tables, so they cannot disagree.

A row names the key(s) as Textual spells them, the action it runs on its screen, the word the
footer shows, the title the command palette lists it under, what it does (help and palette),
the help section it belongs to, and whether it changes the store (then read-only mode leaves it
out everywhere). A new view or action is a new row here and an `action_…` method on its screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from textual.binding import Binding

FILTERS = Binding.Group("filter", compact=True)
VIEWS = Binding.Group("views", compact=True)


@dataclass(frozen=True, slots=True)
class Action:
    keys: str  # Textual's key names, comma-separated: "y", "escape,q"
    action: str  # the action string the key runs: "requeue", "show('dead')"
    label: str  # the footer's word; "" keeps it out of the footer
    title: str  # the command palette's entry; "" keeps it out of the palette
    description: str  # what it does, for the help screen and the palette
    group: str  # the help screen's section
    writes: bool = False  # changes the store: hidden and refused in read-only mode
    shown_as: str = ""  # how the help screen writes the key, when not as Textual names it
    footer_group: Binding.Group | None = None

    @property
    def name(self) -> str:
        """The action's method name without arguments or namespace: "show", "focus_next"."""
        return self.action.partition("(")[0].rpartition(".")[2]

    @property
    def parameters(self) -> tuple[str, ...]:
        args = self.action.partition("(")[2].rstrip(")")
        return tuple(a.strip().strip("'\"") for a in args.split(",")) if args else ()

    @property
    def key_text(self) -> str:
        if self.shown_as:
            return self.shown_as
        return "  ".join(_KEY_NAMES.get(k, k) for k in self.keys.split(","))


_KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "space": "space",
    "escape": "esc",
    "less_than_sign": "<",
    "greater_than_sign": ">",
    "shift+tab": "shift+tab",
}

# fmt: off
DASHBOARD: tuple[Action, ...] = (
    # keys, action, footer, palette title, what it does, help section
    Action("1", "show('all')", "all", "Show all jobs", "every status", "view",
           footer_group=FILTERS),
    Action("2", "show('ready')", "ready", "Show ready jobs",
           "ready jobs available now (not the scheduled ones)", "view", footer_group=FILTERS),
    Action("3", "show('in_progress')", "in progress", "Show in-progress jobs",
           "jobs a consumer holds now", "view", footer_group=FILTERS),
    Action("4", "show('done')", "done", "Show done jobs", "done jobs only", "view",
           footer_group=FILTERS),
    Action("5", "show('dead')", "dead", "Show dead jobs", "dead jobs only", "view",
           footer_group=FILTERS),
    Action("6", "show('scheduled')", "scheduled", "Show scheduled jobs",
           "ready jobs not available yet (delayed or backing off), soonest first; 2 shows the "
           "available ones", "view", footer_group=FILTERS),
    Action("e", "errors", "errors", "Show errors",
           "the errors view: failed and dead jobs grouped by error; enter shows a group's jobs "
           "here, where every job action works on the group", "view", footer_group=VIEWS),
    Action("Q", "queues", "queues", "Show queues",
           "the queues view: counts, scheduled, oldest ready, done and failed per minute, "
           "paused; enter shows one queue here (or every queue again), P pauses or resumes",
           "view", footer_group=VIEWS),
    Action("P", "toggle_pause", "", "Pause or resume the queue",
           "pause the queue shown (no consumer gets its jobs; puts go on), or resume it",
           "jobs", writes=True),
    Action("slash", "search", "Search", "Filter by text",
           "filter by text: payload, error, worker or id (enter applies, esc closes)", "view"),
    Action("s", "reverse", "", "Reverse the order",
           "reverse the order: newest or oldest first, or the sorted column's", "view"),
    Action("greater_than_sign", "sort_by(1)", "", "Sort by the next column",
           "sort by the next column to the right (id sorts the whole store; another column "
           "sorts the jobs loaded, up to 100)", "view"),
    Action("less_than_sign", "sort_by(-1)", "", "Sort by the previous column",
           "sort by the column to the left", "view"),
    Action("z", "zoom", "Panels", "Show or hide the panels",
           "the jobs table alone (summary in two lines, no activity or workers), or back; "
           "terminals under 28 rows start this way", "view"),
    Action("escape", "clear", "", "Clear marks, then filters, then queue",
           "close the search box; else one thing per press: clear the marks, then the text "
           "filter, then the error group, then the status filter, then leave the queue shown",
           "view"),
    # moving
    Action("j", "move(1)", "", "", "down (also ↓); in the jobs table the window of jobs "
           "follows the cursor through the store", "move", shown_as="j  ↓"),
    Action("k", "move(-1)", "", "", "up (also ↑)", "move", shown_as="k  ↑"),
    Action("ctrl+d", "half_page(1)", "", "", "half a page down (pgdn: a page)", "move"),
    Action("ctrl+u", "half_page(-1)", "", "", "half a page up (pgup: a page)", "move"),
    Action("g", "jump(True)", "", "First row",
           "first row (in the jobs table the cursor then follows the newest job)", "move"),
    Action("G", "jump(False)", "", "Last row", "last row", "move"),
    Action("h", "sideways(-1)", "", "", "scroll the jobs table left (also ←)", "move",
           shown_as="h  ←"),
    Action("l", "sideways(1)", "", "", "scroll the jobs table right, to the columns past the "
           "edge (also →)", "move", shown_as="l  →"),
    Action("tab", "app.focus_next", "", "", "next panel: jobs, activity, workers", "move"),
    Action("shift+tab", "app.focus_previous", "", "", "previous panel", "move"),
    # jobs
    Action("enter", "open_job", "", "Open job",  # the footer would show the table's enter
           "open the job: whole error, whole payload and history, live", "jobs"),
    Action("space", "mark", "Mark", "Mark job",
           "mark or unmark the job; actions apply to the marked jobs, else the highlighted one",
           "jobs", writes=True),
    Action("a", "mark_all", "", "Mark every job shown",
           "mark every job shown in the table", "jobs", writes=True),
    Action("i", "invert_marks", "", "Invert the marks",
           "invert the marks of the jobs shown in the table", "jobs", writes=True),
    Action("R", "bulk('requeue')", "", "Requeue all matching",
           "requeue every job matching the filter, text and error group, not only those "
           "shown (the exact count is asked first; unfiltered: done and dead jobs)", "jobs",
           writes=True),
    Action("D", "bulk('delete')", "", "Delete all matching",
           "delete every job matching the filter, text and error group, not only those "
           "shown (the exact count is asked first)", "jobs", writes=True),
    Action("r", "requeue", "Requeue", "Requeue jobs",
           "requeue: put the jobs back to ready, attempts reset", "jobs", writes=True),
    Action("d", "delete", "Delete", "Delete jobs", "delete the jobs for good", "jobs",
           writes=True),
    Action("n", "run_now", "", "Run scheduled jobs now",
           "run now: make the scheduled jobs (marked, else highlighted) available at once",
           "jobs", writes=True),
    Action("p", "purge", "Purge", "Purge jobs",
           "purge: remove done or dead jobs older than an age", "jobs", writes=True),
    Action("y", "copy('id')", "", "Copy job ids",
           "copy the job's id (the marked jobs' ids) to the clipboard", "jobs"),
    Action("Y", "copy('payload')", "", "Copy payload",
           "copy the highlighted job's whole payload to the clipboard", "jobs"),
    # app
    Action("question_mark", "help", "Help", "Help", "every key", "app"),
    Action("q", "app.quit", "Quit", "", "quit", "app"),
)

DETAIL: tuple[Action, ...] = (
    Action("r", "requeue", "Requeue", "Requeue this job",
           "put the job back to ready, attempts reset", "job", writes=True),
    Action("d", "delete", "Delete", "Delete this job", "delete the job for good", "job",
           writes=True),
    Action("y", "copy('id')", "Copy id", "Copy this job's id", "copy the job's id", "job"),
    Action("Y", "copy('payload')", "Copy payload", "Copy this job's payload",
           "copy the whole payload", "job"),
    Action("e", "copy('error')", "Copy error", "Copy this job's error",
           "copy the whole last error", "job"),
    Action("j", "scroll(1)", "", "", "scroll down (also ↓ pgdn)", "job", shown_as="j  ↓"),
    Action("k", "scroll(-1)", "", "", "scroll up (also ↑ pgup)", "job", shown_as="k  ↑"),
    Action("escape,q", "close", "Close", "", "back to the jobs", "job"),
)
ERRORS: tuple[Action, ...] = (
    Action("enter", "choose", "", "Show this group's jobs",
           "show the group's jobs on the dashboard (esc there shows every job again)", "errors"),
    Action("j", "move(1)", "", "", "down (also ↓)", "errors", shown_as="j  ↓"),
    Action("k", "move(-1)", "", "", "up (also ↑)", "errors", shown_as="k  ↑"),
    Action("g", "jump(True)", "", "", "first row", "errors"),
    Action("G", "jump(False)", "", "", "last row", "errors"),
    Action("escape,q,e", "close", "Close", "", "back to the jobs", "errors",
           shown_as="esc  e"),
)
QUEUES: tuple[Action, ...] = (
    Action("enter", "choose", "", "Show this queue",
           "show this queue's jobs on the dashboard (the first row: every queue)", "queues"),
    Action("P", "toggle_pause", "Pause/resume", "Pause or resume this queue",
           "pause the queue (no consumer gets its jobs; puts go on), or resume it", "queues",
           writes=True),
    Action("j", "move(1)", "", "", "down (also ↓)", "queues", shown_as="j  ↓"),
    Action("k", "move(-1)", "", "", "up (also ↑)", "queues", shown_as="k  ↑"),
    Action("g", "jump(True)", "", "", "first row", "queues"),
    Action("G", "jump(False)", "", "", "last row", "queues"),
    Action("escape,q,Q", "close", "Close", "", "back to the jobs", "queues",
           shown_as="esc  Q"),
)
# fmt: on

GROUP_TITLES = {
    "view": "view",
    "move": "move",
    "jobs": "jobs",
    "app": "app",
    "job": "one job",
    "errors": "errors view",
    "queues": "queues view",
}


def available(actions: Iterable[Action], read_only: bool) -> Iterator[Action]:
    """The actions a dashboard in this mode has: read-only leaves out every change."""
    return (a for a in actions if not (a.writes and read_only))


def bindings(actions: Iterable[Action]) -> list[Binding]:
    """A screen's BINDINGS. Read-only mode is applied by the screen's check_action (a
    binding cannot know the mode), from the same `writes` column."""
    return [
        Binding(a.keys, a.action, a.label, show=bool(a.label), group=a.footer_group)
        for a in actions
    ]


def find(actions: Iterable[Action], name: str) -> Action | None:
    return next((a for a in actions if a.name == name), None)


def writes(actions: Iterable[Action]) -> frozenset[str]:
    """The names of the actions that change the store."""
    return frozenset(a.name for a in actions if a.writes)
