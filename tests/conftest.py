"""Shared test helpers: the real captures in ../shared, configs in temporary folders, a clock."""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIGEST_SHARED_DIR", REPO.parent / "shared"))
SEEDS = SHARED / "seeds"
FIXTURES = SHARED / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_shared(path: Path) -> Path:
    """The path inside ../shared, or skip the test where that data is not checked out.

    Under CI=true the data must be there: a missing file fails instead of skipping.
    """
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing; CI must run with ../shared beside the repo")
        pytest.skip(f"needs {path} (the shared captures, not part of a user's clone)")
    return path


@pytest.fixture
def seeds() -> list[Path]:
    """The three real listing captures, in capture order."""
    folder = need_shared(SEEDS)
    files = sorted(folder.glob("*.txt"))
    assert [f.name[:3] for f in files] == ["000", "001", "003"]
    return files


@pytest.fixture
def fixtures_dir() -> Path:
    return need_shared(FIXTURES)


class FixedClock:
    """A clock tests move by hand: every call returns the same instant until advanced."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 13, 6, 30, tzinfo=UTC))


SUBSCRIBER_ALL = """
[[subscribers]]
name = "all"
email = "all@example.org"
keywords = []
max_papers = 1000
channels = ["email", "feed", "page", "markdown"]
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config.toml into tmp_path: sources and subscribers as TOML snippets."""

    def make(
        subscribers: str = SUBSCRIBER_ALL,
        sources: str | None = None,
        extra: str = "",
        folder: Path = tmp_path,
    ) -> Path:
        sources = (
            sources
            or """
[[sources]]
name = "inbox"
kind = "file"
path = "inbox/*"
"""
        )
        (folder / "inbox").mkdir(exist_ok=True)
        text = textwrap.dedent(
            """
            timezone = "UTC"
            [store]
            path = "state/digest.db"
            [output]
            dir = "out"
            """
        )
        config = folder / "config.toml"
        config.write_text(text + extra + sources + subscribers, encoding="utf-8")
        return config

    return make


def utc_at(day: str, hour: int = 12) -> datetime:
    """``hour`` o'clock UTC on ``day`` (an ISO date)."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def run_on(config_path: Path, day: str, http, hour: int = 12):
    """One run of the config for ``day`` (an ISO date) at ``hour`` UTC, through ``http``."""
    from digest.config import load_config
    from digest.pipeline import run_once

    return run_once(
        load_config(config_path),
        today=date.fromisoformat(day),
        clock=lambda: utc_at(day, hour),
        http=http,
    )


def day(n: int) -> date:
    """Day n of the replay used throughout: 2026-03-13 + n."""
    return date(2026, 3, 13) + timedelta(days=n)


class FakeTime:
    """Epoch seconds that only move when something sleeps: waits are recorded, not spent."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_http(fake_time, tmp_path):
    """An Http layer on a fake clock, with the arXiv throttle in a file under tmp_path."""
    from digest.config import HttpSettings
    from digest.http import Http, Throttle

    made = []

    def make(**settings):
        values = {"timeout": 2.0, "retries": 2, "backoff": 1.0} | settings
        http = Http(
            HttpSettings(**values),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            jitter=lambda: 0.5,  # no randomness: backoff is exactly backoff * 2**n
            throttles={
                "arxiv": Throttle(
                    3.0, tmp_path / "arxiv.throttle", fake_time.clock, fake_time.sleep
                )
            },
        )
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


class SmtpRecorder:
    """An aiosmtpd handler that keeps what it received and misbehaves on request.

    ``rcpt_replies[address]`` and ``data_replies`` are queues of replies to give instead of
    accepting; ``drop_data`` closes the connection at the end of the next N DATA commands
    without answering; ``on_message`` runs when a message is accepted (before the 250).
    """

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.rcpt_replies: dict[str, list[str]] = {}
        self.data_replies: list[str] = []
        self.drop_data = 0
        self.sessions = 0
        self.logins: list[str] = []
        self.on_message = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if not getattr(session, "counted", False):
            session.counted = True
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        queue = self.rcpt_replies.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        if self.drop_data:
            self.drop_data -= 1
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        self.messages.append(
            (list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        )
        if self.on_message is not None:
            self.on_message(len(self.messages))
        return "250 2.0.0 Queued"

    def for_recipient(self, address: str) -> list[bytes]:
        return [content for rcpts, content in self.messages if address in rcpts]


def bound_socket(port: int = 0, *, listening: bool = True) -> socket.socket:
    """A loopback TCP socket bound to ``port`` (0: one the kernel picks), listening unless
    told not to (then connections to it are refused until a server takes it).

    A server handed this socket can never lose its port: a port looked up with
    ``free_port`` is free only at that moment, and any outgoing connection made before
    the server binds it may take it as its own local port (EADDRINUSE)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebinding a stopped server
    sock.bind(("127.0.0.1", port))
    if listening:
        sock.listen(128)
    return sock


class LoopbackSmtp(Controller):
    """aiosmtpd's threaded controller serving on a socket bound before it starts."""

    def __init__(self, handler: Any, bound: socket.socket | None = None, **options: Any) -> None:
        self.bound = bound or bound_socket()
        self.bound.listen(128)
        super().__init__(handler, hostname="127.0.0.1", port=self.bound.getsockname()[1], **options)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.bound, ssl=self.ssl_context)


@contextmanager
def serving_smtp(recorder: SmtpRecorder) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on loopback answering with ``recorder``; yields its port."""
    controller = LoopbackSmtp(recorder)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback; yields (recorder, port)."""
    recorder = SmtpRecorder()
    with serving_smtp(recorder) as port:
        yield recorder, port


def free_port() -> int:
    """A port free at this moment, for a server in another process (``digest serve``)
    or for one that must refuse; a server in this process takes ``bound_socket``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "")


def postgres_url_for_test(name: str) -> str:
    """A fresh, empty PostgreSQL database for one test (dropped and made again)."""
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("DIGEST_TEST_POSTGRES_URL is not set; .ci/run starts a PostgreSQL server")
        pytest.skip("needs a PostgreSQL server: set DIGEST_TEST_POSTGRES_URL (see .ci/run)")
    import re

    from sqlalchemy import create_engine, text

    database = "digest_" + re.sub(r"[^a-z0-9]+", "_", name.lower())[-40:]
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path) -> str | Path:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "store.db"
    return postgres_url_for_test(request.node.name)
