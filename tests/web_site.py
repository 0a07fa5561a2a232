"""A running site with the reader pages, for the web tests: `digest serve`'s waitress
server on loopback (``make_http_server`` + ``serve_until``), a real SMTP server (aiosmtpd)
for the mails it sends, a temporary SQLite store holding a day of papers, and a clock
the test moves by hand."""

from __future__ import annotations

import email
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from conftest import FixedClock, LoopbackSmtp, SmtpRecorder, bound_socket, day
from digest.config import Config, load_config
from digest.links import Links, links_for
from digest.models import Paper
from digest.pipeline import open_store, run_once
from digest.serve import make_http_server, serve_until
from digest.store import Store
from digest.store.schema import papers

SECRET_ENV = "DIGEST_TEST_WEB_SECRET"
SECRET = "web-test-secret-0123456789abcdef"
CONFIG_READER = """
[[subscribers]]
name = "carol"
email = "carol@example.org"
keywords = []
channels = ["email"]
"""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HOSTILE_TITLE = '<script>alert("x")</script> & <b>Bold</b> linear attention'


@dataclass
class Site:
    base: str
    config: Config
    folder: Path
    clock: FixedClock
    smtp: SmtpRecorder
    client: httpx.Client
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def links(self) -> Links:
        made = links_for(self.config)
        assert made is not None
        return made

    @contextmanager
    def store(self) -> Iterator[Store]:
        with open_store(self.config) as store:
            yield store

    def key(self, name: str) -> str:
        with self.store() as store:
            return store.reader_key(name, self.clock())

    def new_client(self, ip: str = "198.51.100.7", **options: Any) -> httpx.Client:
        """A browser of its own (its own cookies), coming from ``ip``."""
        client = httpx.Client(
            base_url=self.base, headers={"X-Forwarded-For": ip}, timeout=10, **options
        )
        self.clients.append(client)
        return client

    def csrf(self, path: str, client: httpx.Client | None = None) -> str:
        """The CSRF token of the form on the page at ``path`` (GET)."""
        response = (client or self.client).get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        found = _CSRF.search(response.text)
        assert found, response.text
        return found.group(1)

    def submit(
        self,
        path: str,
        data: dict[str, Any],
        client: httpx.Client | None = None,
        form: str | None = None,
    ) -> httpx.Response:
        """Fill in the form of the page at ``form`` (default: ``path``) and post it."""
        client = client or self.client
        token = self.csrf(form or path, client)
        return client.post(path, data=data | {"csrf_token": token})

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=default_policy)  # type: ignore[misc]
            for raw in self.smtp.for_recipient(address)
        ]

    def path(self, url: str) -> str:
        assert url.startswith(self.base), url
        return url[len(self.base) :]

    def run(self, on: date) -> Any:
        """One digest run for ``on``, as a cron job would start it."""
        report = run_once(
            load_config(self.config.path),
            today=on,
            clock=lambda: datetime(on.year, on.month, on.day, 7, 30, tzinfo=UTC),
        )
        return report

    def paper_id(self, arxiv_id: str | None = None) -> int:
        with self.store() as store:
            query = select(papers.c.id).order_by(papers.c.id)
            if arxiv_id:
                query = query.where(papers.c.arxiv_id == arxiv_id)
            found = store.conn.execute(query).scalars().first()
        assert found is not None
        return int(found)

    def add_hostile_paper(self) -> int:
        with self.store() as store:
            store.upsert_papers(
                [Paper(title=HOSTILE_TITLE, abstract="x", arxiv_id="2603.99999")],
                day(0),
                self.clock(),
            )
        return self.paper_id("2603.99999")

    def add_reader(self, email_address: str, **values: Any) -> str:
        """A store reader (active unless said otherwise); returns its name."""
        with self.store() as store:
            reader = store.add_subscriber(
                {"email": email_address, "keywords": [], "channels": ["email"]} | values,
                self.clock(),
            )
        return reader.name

    def status(self, ref: str) -> str | None:
        with self.store() as store:
            reader = store.get_subscriber(ref)
        return reader.status if reader else None

    def not_found_body(self) -> bytes:
        """What `digest serve` answers for a path that does not exist."""
        response = httpx.get(f"{self.base}/no/such/path")
        assert response.status_code == 404
        return response.content


def extract_link(message: EmailMessage, route: str) -> str:
    """The first link to ``route`` (e.g. "confirm") in the mail's text part."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"https?://\S+/{route}/\S+", text)
    assert found, text
    return found.group(0)


@contextmanager
def running_site(
    make_config: Any,
    seeds: list[Path],
    monkeypatch: Any,
    *,
    web: str = "",
    subscribers: str = CONFIG_READER,
    base_url: str | None = None,
    signup: str = "open",
    secret: str = SECRET,
    proxies: int = 1,
) -> Iterator[Site]:
    """The site, with one day of papers stored; ``web`` adds lines to ``[web]``;
    ``secret`` is what the secret's variable holds (several: rotation)."""
    monkeypatch.setenv(SECRET_ENV, secret)
    recorder = SmtpRecorder()
    controller = LoopbackSmtp(recorder)
    smtp_port = controller.port
    controller.start()
    listening = bound_socket()  # the digest of the day below makes outgoing connections
    port = listening.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    extra = f"""base_url = "{base_url or base}"
[email]
from = "Paper digest <digest@example.org>"
transport = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
retries = 0
timeout = 5
[web]
secret_env = "{SECRET_ENV}"
signup = "{signup}"
trusted_proxies = {proxies}
{web}
"""
    path = make_config(subscribers=subscribers, extra=extra)
    shutil.copy(seeds[2], path.parent / "inbox" / "day0.txt")
    config = load_config(path)
    clock = FixedClock(datetime(2026, 3, 13, 9, 0, tzinfo=UTC))
    site = Site(base, config, path.parent, clock, recorder, httpx.Client())
    assert site.run(day(0)).ok
    recorder.messages.clear()  # the config reader's digest of that day
    server = make_http_server(config, "127.0.0.1", port, now=clock, bound=listening)
    stop = threading.Event()
    thread = serve_until(server, stop)
    site.client = site.new_client()
    try:
        yield site
    finally:
        for client in site.clients:
            client.close()
        stop.set()
        thread.join(timeout=30)
        controller.stop()
