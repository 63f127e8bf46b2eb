"""pq_core stays cheap to import: workers never pay for the dashboard's libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_importing_pq_core_imports_neither_textual_nor_rich(tmp_path: Path) -> None:
    script = (
        "import json, sys, pq_core\n"
        "q = pq_core.open(sys.argv[1])\n"
        "q.put('x'); q.done(q.get()); q.stats(); pq_core.Manager(q).sweep()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich', 'pq_tui'))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "jobs.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []
