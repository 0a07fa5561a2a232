"""`digest serve`: the output folder over HTTP, for feed readers and browsers.

Routes (GET and HEAD only; everything else is 404 or 405):

- ``/``: an index of the subscribers whose feeds are public;
- ``/feeds/<subscriber>.rss`` and ``.atom``;
- ``/pages/<subscriber>/`` and ``/pages/<subscriber>/<date>.html``;
- ``/healthz``: the last run and whether the schedule is on time (503 if not).

A subscriber with a ``feed_token`` is served only with ``?token=<it>``; a wrong or missing
token is a 404, as is any name not in the config, so private feeds cannot be guessed or
listed. Paths are matched against fixed patterns, never joined from the request, so
nothing outside the output folder can be reached. Responses carry ETag and
Last-Modified, and a matching conditional request gets a 304.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from digest import __version__
from digest.config import Config, SubscriberSettings
from digest.pipeline import open_store
from digest.schedule_rules import previous_fire_time

log = logging.getLogger("digest")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_FEED = re.compile(r"^/feeds/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})\.(?P<kind>rss|atom)$")
_PAGE = re.compile(
    r"^/pages/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})/(?P<file>index\.html|\d{4}-\d{2}-\d{2}(?:-\d+)?\.html)?$"
)
_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


class DigestApp:
    """The WSGI application. ``now`` is passed in so health checks can be tested."""

    def __init__(self, config: Config, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.config = config
        self.out = config.resolve(config.output.dir)
        self.subscribers = {s.name: s for s in config.subscribers}
        self.now = now

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        if method not in ("GET", "HEAD"):
            return self._respond(
                start_response,
                "405 Method Not Allowed",
                b"",
                "text/plain",
                method,
                [("Allow", "GET, HEAD")],
            )
        query = parse_qs(environ.get("QUERY_STRING", ""))
        token = (query.get("token") or [""])[0]
        if path == "/healthz":
            return self._health(start_response, method)
        if path == "/":
            return self._index(start_response, method)
        if match := _FEED.match(path):
            subscriber = self._allowed(match.group("name"), token)
            if subscriber is not None:
                file = self.out / "feeds" / f"{subscriber.name}.{match.group('kind')}"
                return self._file(
                    environ, start_response, method, file, _TYPES[match.group("kind")]
                )
        if match := _PAGE.match(path):
            subscriber = self._allowed(match.group("name"), token)
            if subscriber is not None:
                file = self.out / "pages" / subscriber.name / (match.group("file") or "index.html")
                return self._file(environ, start_response, method, file, _TYPES["html"])
        return self._not_found(start_response, method)

    # --- access ---------------------------------------------------------------------------

    def _allowed(self, name: str, token: str) -> SubscriberSettings | None:
        subscriber = self.subscribers.get(name)
        if subscriber is None:
            return None
        if subscriber.feed_token and not hmac.compare_digest(
            token.encode(), subscriber.feed_token.encode()
        ):
            return None
        return subscriber

    # --- responses ------------------------------------------------------------------------

    def _file(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        file: Path,
        kind: str,
    ) -> Iterable[bytes]:
        try:
            body = file.read_bytes()
            modified = datetime.fromtimestamp(file.stat().st_mtime, UTC).replace(microsecond=0)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return self._not_found(start_response, method)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [
            ("ETag", etag),
            ("Last-Modified", format_datetime(modified, usegmt=True)),
            ("Cache-Control", "no-cache"),
        ]
        if _not_modified(environ, etag, modified):
            return self._respond(start_response, "304 Not Modified", b"", kind, "HEAD", headers)
        return self._respond(start_response, "200 OK", body, kind, method, headers)

    def _index(self, start_response: StartResponse, method: str) -> Iterable[bytes]:
        public = [s for s in self.config.subscribers if not s.feed_token]
        items = "".join(
            f'<li>{html.escape(s.name)}: <a href="/pages/{html.escape(s.name)}/">digests</a> · '
            f'<a href="/feeds/{html.escape(s.name)}.atom">Atom</a> · '
            f'<a href="/feeds/{html.escape(s.name)}.rss">RSS</a></li>'
            for s in public
        )
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>paper-digest</title></head><body><h1>paper-digest</h1>"
            f"<ul>{items or '<li>No public digests.</li>'}</ul></body></html>"
        ).encode()
        return self._respond(start_response, "200 OK", body, _TYPES["html"], method)

    def _health(self, start_response: StartResponse, method: str) -> Iterable[bytes]:
        health = health_of(self.config, self.now())
        status = "200 OK" if health["healthy"] else "503 Service Unavailable"
        body = json.dumps(health, indent=2).encode()
        return self._respond(
            start_response,
            status,
            body,
            "application/json",
            method,
            [("Cache-Control", "no-store")],
        )

    def _not_found(self, start_response: StartResponse, method: str) -> Iterable[bytes]:
        return self._respond(
            start_response, "404 Not Found", b"not found\n", "text/plain; charset=utf-8", method
        )

    @staticmethod
    def _respond(
        start_response: StartResponse,
        status: str,
        body: bytes,
        kind: str,
        method: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        headers = [
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response(status, headers + (extra or []))
        return [] if method == "HEAD" or status.startswith("304") else [body]


def _not_modified(environ: dict[str, Any], etag: str, modified: datetime) -> bool:
    match = environ.get("HTTP_IF_NONE_MATCH")
    if match is not None:
        return etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*"
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def health_of(config: Config, now: datetime) -> dict[str, Any]:
    """The last run and whether the schedule is being kept.

    Unhealthy when the last run failed or was interrupted, or when a scheduled time passed
    more than the misfire grace ago without a run starting after it.
    """
    path = config.resolve(config.store.path)
    runs: list[dict[str, Any]] = []
    if Path(path).exists():
        with open_store(config) as store:
            runs = [r for r in store.last_runs(20) if not r["dry_run"]]
    last = runs[0] if runs else None
    health: dict[str, Any] = {
        "version": __version__,
        "last_run": last,
        "healthy": True,
        "problems": [],
    }
    if last is not None and last["status"] in ("failed", "interrupted"):
        health["healthy"] = False
        health["problems"].append(f"the last run ({last['date']}) {last['status']}")
    if config.schedule is not None:
        zone = config.schedule.timezone or config.timezone
        due = previous_fire_time(config.schedule.cron, zone, now)
        grace = timedelta(minutes=config.schedule.misfire_grace_minutes)
        started_since = (
            any(datetime.fromisoformat(r["started_at"]) >= due for r in runs) if due else True
        )
        health["last_scheduled_time"] = due.isoformat() if due else None
        if due is not None and not started_since and now - due > grace:
            health["healthy"] = False
            health["problems"].append(f"overdue: no run started since {due.isoformat()}")
    return health


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


def make_http_server(config: Config, host: str, port: int) -> WSGIServer:
    server = make_server(
        host, port, DigestApp(config), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    log.info(
        "serving %s on http://%s:%d/", config.resolve(config.output.dir), host, server.server_port
    )
    return server


def serve_until(server: WSGIServer, stop: threading.Event) -> threading.Thread:
    """Serve in a thread until ``stop`` is set; returns the thread (already started)."""
    thread = threading.Thread(target=server.serve_forever, name="digest-serve", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.wait()
        server.shutdown()
        server.server_close()

    threading.Thread(target=stopper, name="digest-serve-stop", daemon=True).start()
    return thread
