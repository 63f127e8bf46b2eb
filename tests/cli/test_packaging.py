"""What an install gives: pq_core and `pq` on the standard library; `pq-tui` says what it lacks."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from .conftest import pq

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def without_textual(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import textual` fails, as on a plain `pip install pq-jobs`."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['textual'] = None  # any import of it now fails\n"
    )
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def test_pq_tui_without_textual_says_how_to_install_it_in_one_line(tmp_path: Path) -> None:
    env = without_textual(tmp_path)
    for args in (["--demo"], [str(tmp_path / "jobs.sqlite")]):
        result = subprocess.run(
            [str(BIN / "pq-tui"), *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            "pq-tui: the dashboard needs Textual, not installed here: pip install 'pq-jobs[tui]'\n"
        )
        assert result.stdout == ""


def test_pq_works_without_textual(tmp_path: Path) -> None:
    env = without_textual(tmp_path)
    db = str(tmp_path / "jobs.sqlite")
    worker = ["worker", db, "--exit-when-empty", "--", sys.executable, "-c", ""]
    for args in (["put", db, "x"], ["stats", db], ["metrics", db], worker):
        result = subprocess.run(
            [str(BIN / "pq"), *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr


def test_a_plain_install_needs_nothing_and_the_extras_add_textual_and_psycopg() -> None:
    meta = project()
    assert meta["name"] == "pq-jobs"
    assert meta.get("dependencies", []) == []
    extras = meta["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["tui"]] == ["textual"]
    assert [d.split(">")[0] for d in extras["postgres"]] == ["psycopg[binary]"]
    assert set(meta["scripts"]) == {"pq", "pq-tui"}


def test_the_license_file_matches_the_metadata_and_pq_core_is_typed() -> None:
    assert project()["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "pq_core" / "py.typed").exists()


def test_pq_version_comes_from_the_package_metadata() -> None:
    assert pq("--version").stdout == f"pq {metadata.version('pq-jobs')}\n"
