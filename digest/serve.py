"""`digest serve`: the output folder over HTTP, for feed readers and browsers.

Routes (GET and HEAD only; everything else is 404 or 405):

- ``/``: an index of the subscribers whose feeds are public;
- ``/feeds/<subscriber>.rss`` and ``.atom``;
- ``/pages/<subscriber>/`` and ``/pages/<subscriber>/<date>.html``;
- ``/healthz``: the last run and whether the schedule is on time (503 if not).

With ``[web] secret_env`` set, ``Dispatcher`` hands the reader pages' paths
(``/subscribe``, ``/confirm/``, ``/manage/``, ``/unsubscribe/``, ``/rate/``,
``/ratings/``, ``/static/``) to their own app (``digest.web``), forms and all.

A subscriber with a ``feed_token`` is served only with ``?token=<it>``; a wrong or missing
token is a 404, as is any name of no reader, so private feeds cannot be guessed or
listed. Readers are the config's and the store's (active, paused or bouncing: those that
have outputs and have not left), the store's read at most every ``READERS_TTL`` seconds,
so a reader added while the server runs is served within seconds. Paths are matched
against fixed patterns, never joined from the request, and a file is served only if it
resolves, links followed, to a regular file inside the output folder, so nothing outside
it can be reached. Responses carry ETag and Last-Modified, and
a matching conditional request gets a 304.

The server is waitress: connections wait in a poll loop, not in threads, so idle or slow
clients hold no worker; a connection idle for ``[serve] channel_timeout`` seconds is closed,
at most ``[serve] connection_limit`` are open at once, and ``[serve] threads`` answer
requests. Feed tokens never reach the logs: every line says ``token=REDACTED``, and the
reader pages' path tokens ``/manage/REDACTED``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode

from sqlalchemy import select
from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from digest import __version__
from digest.config import Config
from digest.pipeline import open_store
from digest.schedule_rules import previous_fire_time
from digest.store import Store
from digest.store.schema import runs as runs_table

log = logging.getLogger("digest")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_FEED = re.compile(r"^/feeds/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})\.(?P<kind>rss|atom)$")
_PAGE = re.compile(
    r"^/pages/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})/(?P<file>index\.html|\d{4}-\d{2}-\d{2}(?:-\d+)?\.html)?$"
)
READERS_TTL = 5.0  # seconds the store's readers are kept between two requests
_SERVED_STATUSES = ("active", "paused", "bouncing")
_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


class DigestApp:
    """The WSGI application. ``now`` is passed in so health checks can be tested."""

    def __init__(self, config: Config, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.config = config
        self.out = config.resolve(config.output.dir).resolve()
        self.subscribers = {s.name: s for s in config.subscribers}
        self.now = now
        self._readers: tuple[float, dict[str, str | None]] | None = None
        self._readers_lock = threading.Lock()

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
            name = self._allowed(match.group("name"), token)
            if name is not None:
                file = self.out / "feeds" / f"{name}.{match.group('kind')}"
                return self._file(
                    environ, start_response, method, file, _TYPES[match.group("kind")]
                )
        if match := _PAGE.match(path):
            name = self._allowed(match.group("name"), token)
            if name is not None:
                file = self.out / "pages" / name / (match.group("file") or "index.html")
                return self._file(environ, start_response, method, file, _TYPES["html"])
        return self._not_found(start_response, method)

    # --- access ---------------------------------------------------------------------------

    def _allowed(self, name: str, token: str) -> str | None:
        """The reader's name if ``name`` is a reader and ``token`` opens its outputs."""
        readers = self.readers()
        if name not in readers:
            return None
        expected = readers[name]
        if expected and not hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return name

    def readers(self) -> dict[str, str | None]:
        """Every reader whose feed and pages are served -> its feed token (None: public):
        the config's first (the config wins a clash of names), then the store's."""
        with self._readers_lock:
            if self._readers is None or time.monotonic() - self._readers[0] > READERS_TTL:
                found: dict[str, str | None] = {
                    s.name: s.feed_token for s in self.subscribers.values()
                }
                for name, token in store_readers(self.config).items():
                    found.setdefault(name, token)
                self._readers = (time.monotonic(), found)
            return self._readers[1]

    # --- responses ------------------------------------------------------------------------

    def _file(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        file: Path,
        kind: str,
    ) -> Iterable[bytes]:
        read = read_inside(self.out, file)
        if read is None:
            return self._not_found(start_response, method)
        body, mtime = read
        modified = datetime.fromtimestamp(mtime, UTC).replace(microsecond=0)
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
        public = [name for name, token in self.readers().items() if not token]
        items = "".join(
            f'<li>{html.escape(name)}: <a href="/pages/{html.escape(name)}/">digests</a> · '
            f'<a href="/feeds/{html.escape(name)}.atom">Atom</a> · '
            f'<a href="/feeds/{html.escape(name)}.rss">RSS</a></li>'
            for name in public
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


def store_readers(config: Config) -> dict[str, str | None]:
    """The store's readers whose outputs are served -> feed token; none when there is no
    store yet (it is not created to find out) or it cannot be read (that is logged)."""
    if not (config.store.database_url or Path(config.resolve(config.store.path)).exists()):
        return {}
    try:
        with open_store(config) as store:
            found = store.reader_feed_tokens()
    except Exception as exc:  # a store down must not take the feeds of the config down
        log.error("serve: cannot read the store's readers: %s", exc)
        return {}
    return {name: token for name, (token, status) in found.items() if status in _SERVED_STATUSES}


def read_inside(root: Path, file: Path) -> tuple[bytes, float] | None:
    """The bytes and mtime of ``file`` if it is a regular file inside ``root`` (resolved).

    Links are followed before the check, so a symlink in the output folder pointing at the
    config or the store is refused, as are folders, FIFOs and devices. The file is opened
    without following a last-moment link and without blocking (a FIFO would hang the
    worker), and its type is checked on the open descriptor, so a swap after the check
    cannot slip another file in. None means "not found" to the client, whatever the reason.
    """
    try:
        target = file.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a loop of links, a name too long
        return None
    if not target.is_relative_to(root):
        return None
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(), info.st_mtime


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

    Unhealthy when the last run that ended failed or was interrupted, or when a scheduled
    time passed more than the misfire grace ago without a run starting after it. A run
    still marked running whose process is gone (SIGKILL, out of memory, a host restart)
    never wrote its end: it counts as interrupted, not as running forever. A run in
    progress does not hide the one before it: after a crash, health stays 503 until a
    later run succeeds.
    """
    path = config.resolve(config.store.path)
    runs: list[dict[str, Any]] = []
    gone: set[int] = set()
    if config.store.database_url or Path(path).exists():
        with open_store(config) as store:
            runs = [r for r in store.last_runs(20) if not r["dry_run"]]
            gone = runs_whose_process_is_gone(store, [r for r in runs if r["status"] == "running"])
    for run in runs:
        if run["id"] in gone:
            run["status"] = "interrupted"
    last = runs[0] if runs else None
    health: dict[str, Any] = {
        "version": __version__,
        "last_run": last,
        "healthy": True,
        "problems": [],
    }
    ended = next((r for r in runs if r["status"] != "running"), None)
    if ended is not None and ended["status"] in ("failed", "interrupted"):
        health["healthy"] = False
        health["problems"].append(_run_problem(ended))
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


def _run_problem(run: dict[str, Any]) -> str:
    if run["status"] == "interrupted":
        return (
            f"the last run ({run['date']}) was interrupted: "
            "its process ended before the run finished"
        )
    return f"the last run ({run['date']}) {run['status']}"


def runs_whose_process_is_gone(store: Store, running: list[dict[str, Any]]) -> set[int]:
    """The ids among ``running`` whose process no longer exists.

    PostgreSQL says so for any host (the run's advisory lock went with its connection).
    SQLite records the pid and host: a run of this host is gone when no process has its
    pid, or when the process with that pid started after the run did (the pid was reused,
    as pid 1 is by every restart of a container). A run of another host, or recorded
    without a pid, cannot be judged here and stays running.
    """
    if not running:
        return set()
    if store.postgres:
        return {r["id"] for r in running if not store.run_is_alive(r["id"])}
    ids = [r["id"] for r in running]
    columns = runs_table.c
    rows = store.conn.execute(
        select(columns.id, columns.pid, columns.host, columns.started_at).where(columns.id.in_(ids))
    ).all()
    here = socket.gethostname()
    return {
        run_id
        for run_id, pid, host, started_at in rows
        if pid is not None and host == here and not _process_runs_since(pid, started_at)
    }


# Process start times are read in clock ticks and the run's start is rounded: a little slack.
_START_SLACK = timedelta(seconds=2)


def _process_runs_since(pid: int, since: datetime) -> bool:
    """Whether a live process with ``pid`` exists and started no later than ``since``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = _boot_time()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: that the pid exists is all that can be known
        return _pid_exists(pid)
    if fields[0] in ("Z", "X"):  # a zombie or dead: it only waits to be reaped
        return False
    ticks = int(fields[19])  # field 22 of proc_pid_stat(5): starttime, in clock ticks
    started = boot + timedelta(seconds=ticks / os.sysconf("SC_CLK_TCK"))
    return started <= since + _START_SLACK


def _boot_time() -> datetime:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), UTC)
    raise OSError("/proc/stat has no btime line")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The output folder answers GET and HEAD only; the reader pages' forms are small.
MAX_REQUEST_HEADER_BYTES = 64 * 1024
MAX_REQUEST_BODY_BYTES = 64 * 1024
# How often the server looks for connections idle past the timeout, at most.
LONGEST_CLEANUP_INTERVAL = 10
# How long a stopped server waits for the requests it is answering.
SHUTDOWN_GRACE_SECONDS = 5

_TOKEN_VALUE = re.compile(r"(token=)[^&\s\"'#]*", re.IGNORECASE)
# The reader pages' signed links carry their token as a path segment.
_PATH_TOKEN = re.compile(r"(/(?:confirm|manage|unsubscribe|rate|ratings)/)[^/?#\s\"']+")


def redact(text: str) -> str:
    """``text`` with every ``token=`` value and every reader link's path token replaced, so
    private feed tokens and signed links stay out of logs."""
    return _PATH_TOKEN.sub(r"\1REDACTED", _TOKEN_VALUE.sub(r"\1REDACTED", text))


class RedactTokens(logging.Filter):
    """Rewrites each record (message and traceback) with the feed tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_SERVER_LOGGERS = ("digest", "waitress", "waitress.queue")


def redact_server_logs() -> None:
    """Put the token filter on every logger the server writes to (once each)."""
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


# Characters a logged path keeps as they are; the rest (newlines too) are percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def logged_query(query: str) -> str:
    """The query string as the access log shows it: decoded as the app reads it (so
    ``tok%65n=`` is caught too), the token's value redacted, everything re-encoded so
    an untrusted value cannot start a line of its own."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(key, "REDACTED" if key == "token" else value) for key, value in pairs])


class AccessLog:
    """WSGI middleware: one debug line per request (client, method, path, status)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def logged(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            query = logged_query(environ.get("QUERY_STRING", ""))
            log.debug(
                "%s %s %s%s %s",
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                _PATH_TOKEN.sub(
                    r"\1REDACTED", quote(environ.get("PATH_INFO", "/"), safe=_PATH_SAFE)
                ),
                f"?{query}" if query else "",
                status.split(" ", 1)[0],
            )
            return start_response(status, headers, *exc)

        return self.app(environ, logged)


# The paths the reader pages answer; every other path is the output folder's.
READER_PATHS = re.compile(r"^/(?:subscribe$|(?:confirm|manage|unsubscribe|rate|ratings|static)/)")


class Dispatcher:
    """WSGI: the reader pages' paths to their app (when ``[web] secret_env`` is set), every
    other path to ``DigestApp``, unchanged."""

    def __init__(
        self, files: DigestApp, pages: Callable[..., Iterable[bytes]] | None = None
    ) -> None:
        self.files = files
        self.pages = pages

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        if self.pages is not None and READER_PATHS.match(path):
            return self.pages(environ, start_response)
        return self.files(environ, start_response)


def make_app(config: Config, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Dispatcher:
    """The whole site: the output folder and, with a web secret, the reader pages."""
    if not config.web.secret_env:
        return Dispatcher(DigestApp(config, now))
    from digest.web.app import create_app  # Flask is loaded only where pages are served

    return Dispatcher(DigestApp(config, now), create_app(config, now))


HttpServer = BaseWSGIServer | MultiSocketServer


def make_http_server(
    config: Config,
    host: str,
    port: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    bound: socket.socket | None = None,
) -> HttpServer:
    """A waitress server for the output folder and the reader pages, listening but not
    yet serving. ``now`` is the clock of health checks, token expiry and rate limits.

    ``bound`` is a socket already bound (then ``host`` and ``port`` only name it in the
    log): whoever binds first owns the port, so a caller that must know the port before
    the server exists never loses it to another connection in between."""
    settings = config.serve
    redact_server_logs()
    where = {"sockets": [bound]} if bound is not None else {"host": host, "port": port}
    server = create_server(
        AccessLog(make_app(config, now)),
        **where,
        threads=settings.threads,
        channel_timeout=settings.channel_timeout,
        cleanup_interval=min(LONGEST_CLEANUP_INTERVAL, max(1, settings.channel_timeout // 2)),
        connection_limit=settings.connection_limit,
        max_request_header_size=MAX_REQUEST_HEADER_BYTES,
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
        asyncore_use_poll=True,  # select() cannot watch descriptors past 1024
        # The reader pages read X-Forwarded-* of [web] trusted_proxies (ProxyFix); without
        # any, waitress drops those headers, so no client can claim another's address.
        clear_untrusted_proxy_headers=not config.web.trusted_proxies,
        ident=f"paper-digest/{__version__}",
        expose_tracebacks=False,
    )
    log.info(
        "serving %s on http://%s:%d/ (%d threads, idle connections closed after %ds, "
        "at most %d connections)",
        config.resolve(config.output.dir),
        host,
        _port_of(server),
        settings.threads,
        settings.channel_timeout,
        settings.connection_limit,
    )
    return server


def _port_of(server: HttpServer) -> int:
    if isinstance(server, MultiSocketServer):
        return int(server.effective_listen[0][1])
    return int(server.effective_port)


def serve_until(server: HttpServer, stop: threading.Event) -> threading.Thread:
    """Serve in a thread until ``stop`` is set; returns the thread (already started).

    The poll loop turns once a second at most between events, so it sees ``stop``
    promptly; then the requests being answered get a few seconds and every socket is
    closed, all from the serving thread.
    """

    def loop() -> None:
        sockets = server.map if isinstance(server, MultiSocketServer) else server._map
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=1.0, map=sockets, use_poll=True, count=1)
        finally:
            server.task_dispatcher.shutdown(timeout=SHUTDOWN_GRACE_SECONDS)
            wasyncore.close_all(sockets)

    thread = threading.Thread(target=loop, name="digest-serve", daemon=True)
    thread.start()
    return thread
