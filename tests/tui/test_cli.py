"""`pq-tui`: its arguments, and the one-line errors it gives before any screen is drawn."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import pq_core
from pq_tui import __main__ as cli
from pq_tui.app import PqApp


def run(argv, capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path, capsys):
    path = tmp_path / "nope.sqlite"
    code, err = run([str(path)], capsys)
    assert code == 2
    assert err == f"pq-tui: {path}: no such store\n"
    assert not path.exists()


@pytest.mark.parametrize("kind", ["text", "sqlite", "empty", "folder"])
def test_a_file_that_is_not_a_store_is_a_one_line_error(kind, tmp_path: Path, capsys):
    path = tmp_path / "bad"
    if kind == "text":
        path.write_text("hello, not a database\n" * 100)
    elif kind == "sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    elif kind == "empty":
        path.touch()
    else:
        path.mkdir()
    before = path.read_bytes() if path.is_file() else None
    code, err = run([str(path)], capsys)
    assert code == 2
    assert err.startswith(f"pq-tui: {path}") and err.count("\n") == 1
    assert "Traceback" not in err
    if before is not None:
        assert path.read_bytes() == before  # left as it was


def test_arguments_reach_the_app(tmp_path: Path, monkeypatch, capsys):
    path = tmp_path / "jobs.sqlite"
    pq_core.open(path).close()
    seen = {}

    def fake_run(self: PqApp) -> None:
        seen.update(scope=self.scope, read_only=self.read_only, every=self.refresh_every)
        self.queue.items()  # the queue is open and usable

    monkeypatch.setattr(PqApp, "run", fake_run)
    code, _ = run([str(path), "--queue", "emails", "--read-only", "--refresh", "2.5"], capsys)
    assert code == 0
    assert seen == {"scope": "emails", "read_only": True, "every": 2.5}


@pytest.mark.parametrize(
    "argv", [[], ["--demo", "x.sqlite"], ["x.sqlite", "--refresh", "0"], ["x", "--refresh", "a"]]
)
def test_bad_arguments_exit_2(argv, capsys):
    code, err = run(argv, capsys)
    assert code == 2 and "usage: pq-tui" in err


def test_the_command_prints_no_traceback_for_a_bad_store(tmp_path: Path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00" * 4096)
    done = subprocess.run(
        [sys.executable, "-m", "pq_tui", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("pq-tui: ") and done.stderr.count("\n") == 1


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.strip() == f"pq-tui {metadata.version('pq-jobs')}"
