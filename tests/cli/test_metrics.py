"""`pq metrics`: the Prometheus text format, printed and served over HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import pq_core
from pq_core.metrics import CONTENT_TYPE, label_value, parse_listen

from .conftest import pq, start_pq, wait_for

# One line of the text exposition format (version 0.0.4): a comment, or a sample whose label
# values escape only backslash, double quote and newline.
LINE = re.compile(
    r"^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+"
    r'|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\[\\"n]|[^"\\\n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\[\\"n]|[^"\\\n])*")*\})? -?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?)$'
)


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: local


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }


def assert_valid(text: str) -> None:
    assert text.endswith("\n")
    for line in text.splitlines():
        assert LINE.match(line), f"not exposition format: {line!r}"
    assert text.isascii() or all(ch.isprintable() or ch == "\n" for ch in text)


def test_metrics_prints_counts_ages_throughput_and_live_workers(db: str) -> None:
    q = pq_core.open(db, max_attempts=1)
    q.put_many(["a", "b"])
    q.done(q.get())
    mail = pq_core.open(db, queue="mail", max_attempts=1)
    mail.put("m")
    mail.fail(mail.get(), error="bounced")
    text = pq("metrics", db).stdout
    assert_valid(text)
    got = samples(text)
    assert got['pq_jobs{queue="default",status="ready"}'] == 1
    assert got['pq_jobs{queue="default",status="done"}'] == 1
    assert got['pq_jobs{queue="mail",status="dead"}'] == 1
    assert got['pq_jobs{queue="mail",status="ready"}'] == 0
    assert got['pq_oldest_ready_age_seconds{queue="default"}'] >= 0
    assert got['pq_oldest_ready_age_seconds{queue="mail"}'] == 0  # nothing ready there
    assert got['pq_done_per_minute{queue="default"}'] in (0, 1)  # the last whole minute
    assert got['pq_workers{kind="consumer",queue="default"}'] == 1  # this test process
    assert got['pq_workers{kind="consumer",queue="mail"}'] == 1
    assert got['pq_workers{kind="manager"}'] == 0
    assert "# TYPE pq_jobs gauge" in text and "# HELP pq_jobs " in text


def test_label_values_are_escaped_per_the_format_and_inert() -> None:
    assert label_value('a"b\\c') == 'a\\"b\\\\c'
    assert label_value("x\ny") == "x\\\\ny"  # a visible \n first, then its backslash escaped
    assert label_value("\x1b]52;c;aGk=\x07") == "\\\\x1b]52;c;aGk=\\\\x07"


def test_a_hostile_queue_name_still_makes_valid_inert_metrics(db: str) -> None:
    pq_core.open(db, queue='evil" } \\ {x="y"} ✓').put("x")  # control characters are refused
    text = pq("metrics", db).stdout
    assert_valid(text)
    assert 'queue="evil\\" } \\\\ {x=\\"y\\"}' in text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (":9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_listen_takes_an_optional_host_and_a_port(spec: str, expected: tuple[str, int]) -> None:
    assert parse_listen(spec) == expected


@pytest.mark.parametrize("spec", ["", ":", "host:http", ":70000", "::1:9464", "[::1]"])
def test_a_listen_address_that_makes_no_sense_is_one_line_and_exit_2(db: str, spec: str) -> None:
    pq_core.open(db).put("x")
    result = pq("metrics", db, "--listen", spec, check=False)
    assert result.returncode == 2 and "use [HOST]:PORT" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_http_server_serves_metrics_on_127_0_0_1_and_404_elsewhere(
    db: str, tmp_path: Path
) -> None:
    q = pq_core.open(db)
    q.put("x")
    err = tmp_path / "metrics.err"
    server = start_pq("metrics", db, "--listen", ":0", err=err)  # the OS picks the port
    try:
        found = wait_for(
            lambda: re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", err.read_text()),
            "the server to listen",
        )
        base = f"http://127.0.0.1:{found.group(1)}"
        with OPENER.open(f"{base}/metrics", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE
            text = response.read().decode()
        assert_valid(text)
        assert samples(text)['pq_jobs{queue="default",status="ready"}'] == 1
        q.put("y")  # every scrape reads the store anew
        with OPENER.open(f"{base}/metrics", timeout=30) as response:
            assert samples(response.read().decode())['pq_jobs{queue="default",status="ready"}'] == 2
        for path in ("/", "/metrics/x", "/favicon.ico"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                OPENER.open(f"{base}{path}", timeout=30)
            assert answer.value.code == 404
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert "Traceback" not in err.read_text()
