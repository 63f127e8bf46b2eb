"""The README's `pq` section runs as written, on a fresh folder, with the installed commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section_script(title: str) -> str:
    text = README.read_text()
    section = text[text.index(f"## {title}") :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_pq_commands_run_as_written(tmp_path: Path) -> None:
    script = section_script("The `pq` command")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "job 2: 1" in result.stdout  # the worker's command saw its job and payload
    assert "pq_jobs{" in result.stdout
    assert "Traceback" not in result.stderr
