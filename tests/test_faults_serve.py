"""`digest serve` under faults: idle and slow clients, links out of the output folder, a run
killed mid-way, private tokens in the logs. A real server in a subprocess on loopback."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from werkzeug import Request, Response

from conftest import day, free_port, postgres_url_for_test
from digest.config import load_config
from digest.pipeline import open_store, run_once
from digest.serve import health_of, redact_server_logs, runs_whose_process_is_gone
from digest.store import Store

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-bob-0123456789"
SUBSCRIBERS = f"""
[[subscribers]]
name = "all"
email = "all@example.org"
keywords = []
max_papers = 1000
channels = ["email", "feed", "page"]

[[subscribers]]
name = "bob"
email = "bob@example.org"
keywords = []
channels = ["feed", "page"]
feed_token = "{TOKEN}"
"""
FEED_FIXTURE = "other/takara_tldr_daily_papers_rss_2026-04-30_brevio.xml"
FEED_DATE = "2026-04-30"


class Server:
    """`digest serve` in a subprocess; its stderr (the log) goes to a file read at the end."""

    def __init__(self, config: Path, *options: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = config.parent / f"serve-{self.port}.log"
        self._log = self.log_file.open("w", encoding="utf-8")
        command = [sys.executable, "-m", "digest", *options, "serve", "--config", str(config)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.base}/", timeout=1)
                return
            except httpx.TransportError:
                assert self.process.poll() is None, self.log_file.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)

    def stop(self) -> str:
        """Stop with SIGTERM (it must exit 0 within a few seconds); the log it wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self._log.close()
        log = self.log_file.read_text(encoding="utf-8")
        assert self.process.returncode == 0, log
        return log


@contextlib.contextmanager
def serving(config: Path, *options: str) -> Iterator[Server]:
    server = Server(config, *options)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)
        server._log.close()


@pytest.fixture
def delivered(make_config, seeds) -> Path:
    """A config whose outputs (feeds, pages) were written by a real run."""
    config = make_config(subscribers=SUBSCRIBERS, extra="[serve]\nchannel_timeout = 2\n")
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    report = run_once(
        load_config(config), today=day(0), clock=lambda: datetime(2026, 3, 13, 7, 30, tzinfo=UTC)
    )
    assert report.ok, report.to_json()
    return config


# --- idle and slow connections ---------------------------------------------------------------

IDLE_CONNECTIONS = 300
SLOW_CONNECTIONS = 20
PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (end of file or reset), without waiting."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_idle_and_slow_clients_neither_starve_requests_nor_stay_open(delivered):
    with serving(delivered) as server:
        idle = [
            socket.create_connection(("127.0.0.1", server.port), timeout=5)
            for _ in range(IDLE_CONNECTIONS)
        ]
        slow = [
            socket.create_connection(("127.0.0.1", server.port), timeout=5)
            for _ in range(SLOW_CONNECTIONS)
        ]
        try:
            for byte in PARTIAL_REQUEST[:10]:  # a slowloris: the header a byte at a time
                for sock in slow:
                    sock.send(bytes([byte]))
                time.sleep(0.05)
            started = time.monotonic()
            health = httpx.get(f"{server.base}/healthz", timeout=5)
            feed = httpx.get(f"{server.base}/feeds/all.atom", timeout=5)
            answered_in = time.monotonic() - started
            assert (health.status_code, feed.status_code) == (200, 200)
            assert answered_in < 3, f"answered in {answered_in:.1f}s beside idle clients"
            open_now = sum(not closed_by_server(s) for s in idle + slow)
            assert open_now == IDLE_CONNECTIONS + SLOW_CONNECTIONS  # not refused, only waiting

            # channel_timeout = 2: each silent connection is closed soon after.
            deadline = time.monotonic() + 15
            still_open = idle + slow
            while still_open and time.monotonic() < deadline:
                time.sleep(0.25)
                still_open = [s for s in still_open if not closed_by_server(s)]
            assert len(still_open) == 0, f"{len(still_open)} silent connections still open"
            assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
        finally:
            for sock in idle + slow:
                sock.close()
        log = server.stop()
    assert "idle connections closed after 2s" in log


def test_past_the_connection_limit_new_clients_wait_and_the_log_says_why(delivered):
    config = delivered.read_text().replace(
        "channel_timeout = 2\n", "channel_timeout = 2\nconnection_limit = 5\n"
    )
    delivered.write_text(config)
    with serving(delivered) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(5)]
        try:
            started = time.monotonic()
            late = httpx.get(f"{server.base}/feeds/all.atom", timeout=15)
            waited = time.monotonic() - started
        finally:
            for sock in idle:
                sock.close()
        log = server.stop()
    assert late.status_code == 200
    assert 1 <= waited < 10, f"answered after {waited:.1f}s"  # once the silent ones were closed
    assert re.search(
        r"^\d\d:\d\d:\d\d WARNING +total open connections reached the connection limit", log, re.M
    ), log


# --- links out of the output folder ----------------------------------------------------------


def test_links_and_special_files_in_the_output_folder_are_not_followed_out(delivered, tmp_path):
    out = tmp_path / "out"
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "index.html").write_text("<p>outside the output folder</p>", encoding="utf-8")
    feed = out / "feeds" / "all.rss"
    feed.unlink()
    feed.symlink_to(Path("..") / ".." / "config.toml")  # the report: this served the config
    page = out / "pages" / "all" / "2026-03-13.html"
    page.unlink()
    page.symlink_to(Path("..") / ".." / ".." / "state" / "digest.db")
    shutil.rmtree(out / "pages" / "bob")
    (out / "pages" / "bob").symlink_to(secret, target_is_directory=True)
    os.mkfifo(out / "pages" / "all" / "2026-03-14.html")  # would hang a reader
    (out / "pages" / "all" / "2026-03-15.html").mkdir()
    inside = out / "feeds" / "all.atom"  # a link that stays inside is served
    inside.rename(out / "feeds" / "all.atom.current")
    inside.symlink_to("all.atom.current")

    with serving(delivered) as server:
        refused = {
            path: httpx.get(server.base + path, timeout=5)
            for path in (
                "/feeds/all.rss",
                "/pages/all/2026-03-13.html",
                f"/pages/bob/?token={TOKEN}",
                f"/pages/bob/index.html?token={TOKEN}",
                "/pages/all/2026-03-14.html",
                "/pages/all/2026-03-15.html",
            )
        }
        followed = httpx.get(f"{server.base}/feeds/all.atom", timeout=5)
        server.stop()
    assert {path: r.status_code for path, r in refused.items()} == dict.fromkeys(refused, 404)
    for response in refused.values():
        assert b"[[subscribers]]" not in response.content
        assert b"SQLite" not in response.content and b"outside" not in response.content
    assert followed.status_code == 200 and b"<feed" in followed.content


# --- a run killed mid-way --------------------------------------------------------------------


class SlowFeed:
    """A feed source that holds its first request until released: the run stays mid-way."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.requests = 0

    def __call__(self, _request: Request) -> Response:
        self.requests += 1
        if self.requests == 1:
            self.arrived.set()
            self.release.wait(30)
        return Response(self.body, content_type="application/rss+xml")


def digest_run(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "--config", str(config), "--date", FEED_DATE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_sigkilled_run_makes_healthz_503_until_a_later_run_succeeds(
    make_config, httpserver, fixtures_dir
):
    feed = SlowFeed((fixtures_dir / FEED_FIXTURE).read_bytes())
    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    source = (
        f'\n[[sources]]\nname = "tldr"\nkind = "feed"\nurl = "{httpserver.url_for("/feed.xml")}"\n'
    )
    config = make_config(sources=source)
    interrupted = (
        f"the last run ({FEED_DATE}) was interrupted: its process ended before the run finished"
    )

    with serving(config) as server:
        killed = digest_run(config)
        try:
            assert feed.arrived.wait(60), "the run never asked for its source"
            during = httpx.get(f"{server.base}/healthz", timeout=5)
            assert during.status_code == 200 and during.json()["last_run"]["status"] == "running"
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
        finally:
            if killed.poll() is None:
                killed.kill()
                killed.wait(timeout=30)
        assert killed.returncode == -signal.SIGKILL

        after_kill = httpx.get(f"{server.base}/healthz", timeout=5)
        assert after_kill.status_code == 503, after_kill.text
        assert after_kill.json()["problems"] == [interrupted]
        assert after_kill.json()["last_run"]["status"] == "interrupted"
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 503  # it stays so

        feed.release.set()
        good = digest_run(config)
        _out, err = good.communicate(timeout=120)
        assert good.returncode == 0, err
        healthy = httpx.get(f"{server.base}/healthz", timeout=5)
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["problems"] == []
        server.stop()

    with open_store(load_config(config)) as store:
        statuses = [r["status"] for r in store.last_runs(10)]
        assert statuses == ["ok", "interrupted"]
        assert store.summary().papers == 50
    assert len(list((config.parent / "out").rglob("*.eml"))) == 1  # one digest, sent once
    assert feed.requests == 2


def test_a_run_recorded_by_a_reused_pid_counts_as_gone(make_config):
    """A container restart gives the new process the dead run's pid (often 1) and host."""
    config = load_config(make_config())
    with open_store(config) as store:
        now = datetime.now(UTC)
        before_this_process = now - timedelta(days=1)
        old = store.start_run(day(0), before_this_process)
        store.finish_run(old, "ok", {}, before_this_process)
        reused = store.start_run(day(0), before_this_process)  # recorded with our pid
        with store.transaction() as conn:
            conn.exec_driver_sql("UPDATE runs SET status = 'running'")
        running = [r for r in store.last_runs(10) if r["status"] == "running"]
        assert runs_whose_process_is_gone(store, running) == {old, reused}
        current = store.start_run(day(1), now)
        running = [r for r in store.last_runs(10) if r["status"] == "running"]
        assert [r["id"] for r in running] == [current]
        assert runs_whose_process_is_gone(store, running) == set()
    # The run in progress does not hide the interrupted one before it.
    health = health_of(config, now)
    assert health["last_run"]["status"] == "running" and not health["healthy"]
    assert health["problems"] == [
        f"the last run ({day(0)}) was interrupted: its process ended before the run finished"
    ]


def test_a_dead_run_on_postgresql_counts_as_gone_whatever_its_host(request):
    """PostgreSQL knows: the run's advisory lock went with its process's connection."""
    url = postgres_url_for_test(request.node.name)
    writer = Store.open(url)
    run_id = writer.start_run(day(0), datetime.now(UTC))
    with Store.open(url) as reader:
        with reader.transaction() as conn:  # recorded by a worker on another machine
            conn.exec_driver_sql("UPDATE runs SET host = 'another-host', pid = 1")
        running = [r for r in reader.last_runs(10) if r["status"] == "running"]
        assert [r["id"] for r in running] == [run_id]
        assert runs_whose_process_is_gone(reader, running) == set()
        writer.close()  # the worker's process is gone, its run still marked running
        assert runs_whose_process_is_gone(reader, running) == {run_id}


# --- private tokens in the logs --------------------------------------------------------------


def test_feed_tokens_never_reach_the_access_log(delivered):
    with serving(delivered, "-vv") as server:
        good = httpx.get(f"{server.base}/feeds/bob.atom?token={TOKEN}", timeout=5)
        wrong = httpx.get(f"{server.base}/pages/bob/?x=1&token={TOKEN[:-1]}&y=2", timeout=5)
        encoded = httpx.get(f"{server.base}/feeds/bob.rss?tok%65n={TOKEN}", timeout=5)
        forged = httpx.get(f"{server.base}/feeds/x%0A12:00:00 INFO    forged?token=1", timeout=5)
        log = server.stop()
    assert (good.status_code, wrong.status_code, encoded.status_code) == (200, 404, 200)
    assert forged.status_code == 404
    assert TOKEN[:-1] not in log
    assert "GET /feeds/bob.rss?token=REDACTED 200" in log
    assert "INFO    forged" not in log and "/feeds/x%0A12" in log  # no line of its own
    assert "GET /feeds/bob.atom?token=REDACTED 200" in log
    assert "GET /pages/bob/?x=1&token=REDACTED&y=2 404" in log


def test_feed_tokens_never_reach_error_lines_or_tracebacks(caplog):
    redact_server_logs()
    url = f"/feeds/bob.atom?token={TOKEN}"
    with caplog.at_level(logging.DEBUG):
        try:
            raise ValueError(f"cannot answer {url}")
        except ValueError:
            logging.getLogger("waitress").exception("Exception while serving %s", url)
        logging.getLogger("digest").error("request for %s failed", url)
    assert TOKEN not in caplog.text
    assert caplog.text.count("token=REDACTED") == 3
