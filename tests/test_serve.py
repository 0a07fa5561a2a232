"""`digest serve` as a feed reader and a browser meet it: a real server in a subprocess."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import feedparser
import httpx
import pytest

from conftest import day, free_port
from digest.config import load_config
from digest.pipeline import run_once
from digest.serve import DigestApp

TOKEN = "s3cret-token-for-bob-0123456789"
SUBSCRIBERS = f"""
[[subscribers]]
name = "alice"
email = "alice@example.org"
keywords = []
channels = ["feed", "page"]

[[subscribers]]
name = "bob"
email = "bob@example.org"
keywords = []
channels = ["feed", "page"]
feed_token = "{TOKEN}"
"""


@pytest.fixture
def served(make_config, seeds):
    """A config with delivered outputs, and a running `digest serve` on it."""
    port = free_port()
    config = make_config(subscribers=SUBSCRIBERS)
    served_at = f'[output]\ndir = "out"\nbase_url = "http://127.0.0.1:{port}"\n'
    config.write_text(config.read_text().replace('[output]\ndir = "out"\n', served_at))
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    report = run_once(
        load_config(config), today=day(0), clock=lambda: datetime(2026, 3, 13, 7, 30, tzinfo=UTC)
    )
    assert report.ok, report.to_json()
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
    try:
        yield config, base
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
        assert server.returncode == 0


def test_feeds_parse_and_carry_the_right_content_types(served):
    _config, base = served
    for kind, content_type in (("rss", "application/rss+xml"), ("atom", "application/atom+xml")):
        response = httpx.get(f"{base}/feeds/alice.{kind}")
        assert response.status_code == 200
        assert response.headers["content-type"] == f"{content_type}; charset=utf-8"
        feed = feedparser.parse(response.content)
        assert feed.bozo == 0
        assert len(feed.entries) == 20
    page = httpx.get(f"{base}/pages/alice/2026-03-13.html")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text.count('class="paper"') == 20
    assert httpx.get(f"{base}/pages/alice/").status_code == 200  # the index of digests


def test_conditional_requests_get_304(served):
    _config, base = served
    first = httpx.get(f"{base}/feeds/alice.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = httpx.get(f"{base}/feeds/alice.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (
        httpx.get(f"{base}/feeds/alice.atom", headers={"If-Modified-Since": modified}).status_code
        == 304
    )
    assert (
        httpx.get(f"{base}/feeds/alice.atom", headers={"If-None-Match": '"other"'}).status_code
        == 200
    )


def test_private_feeds_need_their_token_and_are_not_listed(served):
    _config, base = served
    assert httpx.get(f"{base}/feeds/bob.atom").status_code == 404
    assert httpx.get(f"{base}/feeds/bob.atom?token=wrong").status_code == 404
    assert httpx.get(f"{base}/pages/bob/2026-03-13.html").status_code == 404
    good = httpx.get(f"{base}/feeds/bob.atom?token={TOKEN}")
    assert good.status_code == 200 and feedparser.parse(good.content).bozo == 0
    # The feed's own links carry the token, so a feed reader can follow them.
    assert f"?token={TOKEN}" in good.text
    assert httpx.get(f"{base}/pages/bob/2026-03-13.html?token={TOKEN}").status_code == 200
    index = httpx.get(f"{base}/")
    assert index.status_code == 200 and "alice" in index.text and "bob" not in index.text


@pytest.mark.parametrize(
    "path",
    [
        "/../config.toml",
        "/feeds/../config.toml",
        "/feeds/..%2Fconfig.toml",
        "/pages/alice/../../config.toml",
        "/pages/alice/%2e%2e/%2e%2e/config.toml",
        "/pages/../state/digest.db",
        "/state/digest.db",
        "/out/feeds/alice.atom",
        "/feeds/nobody.atom",
        "/pages/alice/2026-03-99.html",
        "/feeds/alice.atom/",
    ],
)
def test_nothing_outside_the_outputs_is_reachable(served, path):
    _config, base = served
    response = httpx.get(base + path)
    assert response.status_code == 404, path
    assert b"[[subscribers]]" not in response.content and b"SQLite" not in response.content


def test_only_get_and_head(served):
    _config, base = served
    assert httpx.post(f"{base}/feeds/alice.atom").status_code == 405
    head = httpx.head(f"{base}/feeds/alice.atom")
    assert (
        head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    )


def test_healthz_reflects_the_last_run(served):
    config, base = served
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200 and health.json()["healthy"] is True
    assert health.json()["last_run"]["status"] == "ok"
    (config.parent / "inbox" / "broken.json").write_text("[{", encoding="utf-8")
    failed = run_once(
        load_config(config), today=day(1), clock=lambda: datetime(2026, 3, 14, 7, 30, tzinfo=UTC)
    )
    assert not failed.ok
    unhealthy = httpx.get(f"{base}/healthz")
    assert unhealthy.status_code == 503
    assert unhealthy.json()["problems"] == ["the last run (2026-03-14) failed"]


def test_healthz_says_overdue_when_the_schedule_was_missed(make_config):
    config = load_config(
        make_config(
            extra='\n[schedule]\ncron = "30 7 * * *"\ntimezone = "UTC"\nmisfire_grace_minutes = 60\n'
        )
    )
    on_time = DigestApp(config, now=lambda: datetime(2026, 3, 13, 8, 0, tzinfo=UTC))
    late = DigestApp(
        config, now=lambda: datetime(2026, 3, 13, 8, 0, tzinfo=UTC) + timedelta(hours=1)
    )
    captured: list[str] = []

    def start_response(status, _headers):
        captured.append(status)

    body_on_time = b"".join(
        on_time({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, start_response)
    )
    body_late = b"".join(late({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, start_response))
    assert captured == ["200 OK", "503 Service Unavailable"]
    assert b"overdue: no run started since 2026-03-13T07:30:00+00:00" in body_late
    assert b'"healthy": true' in body_on_time


def test_schedule_serve_runs_both_in_one_process(make_config, seeds):
    port = free_port()
    # Every two seconds, not once at a moment a few seconds ahead: a process that starts
    # slowly under load would miss that moment (catch_up is off) and never run.
    config = make_config(
        extra='\n[schedule]\ncron = "*/2 * * * * *"\ntimezone = "UTC"\ncatch_up = false\n'
    )
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "schedule",
            "--serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/feeds/all.atom", timeout=1)
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no feed was served"
            time.sleep(0.2)
        assert feedparser.parse(response.content).bozo == 0
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
