"""The one HTTP layer every live source uses: polite, bounded and honest about failures.

- timeouts, a descriptive User-Agent, http/https only, a cap on response size;
- retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped or
  truncated connections, honouring ``Retry-After`` and Hugging Face's ``RateLimit``
  header (``"api";r=0;t=55``: wait 55 seconds);
- a failure budget per host (``failure_budget_seconds``): once a host's timeouts, refused
  connections and retried answers, with the waits between them, cost the run more, it is
  not asked again in this run (see digest.breaker);
- conditional GET: a source passes the validators (ETag, Last-Modified) it kept from the
  last response and gets ``not_modified`` for a 304;
- throttles: arXiv asks for one request every 3 seconds on one connection, for all of a
  user's machines together. A :class:`Throttle` keeps that across the API and RSS sources
  and across processes, through a lock file beside the store.

The clock and the sleeper are passed in, so tests check every wait without waiting.
"""

from __future__ import annotations

import email.utils
import fcntl
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from digest import __version__
from digest.breaker import FailureBudget
from digest.config import HttpSettings
from digest.errors import SourceError

log = logging.getLogger("digest")

Clock = Callable[[], float]  # seconds since the epoch
Sleeper = Callable[[float], None]

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_RATELIMIT_RESET = re.compile(r"\bt=(\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response worth reading, or a 304 (``not_modified``, no content)."""

    url: str
    status: int
    content: bytes
    content_type: str
    not_modified: bool = False
    validators: dict[str, str] = field(default_factory=dict)
    retries: tuple[str, ...] = ()  # what went wrong before it worked, and how long we waited

    def summary(self) -> dict[str, object]:
        """What the run report says about this request."""
        return {"url": self.url, "status": self.status, "retries": list(self.retries)}


class Throttle:
    """At most one request per ``interval`` seconds, and one at a time, across processes.

    The time of the last request lives in a small file guarded by ``flock``: a process
    holds the lock from the wait until its response is read, so two processes (or two
    sources in one run) never talk to the same service at once or closer than allowed.
    Without a path the throttle is kept in memory only.
    """

    def __init__(self, interval: float, path: Path | None, clock: Clock, sleep: Sleeper) -> None:
        self.interval = interval
        self.path = path
        self.clock = clock
        self.sleep = sleep
        self._last = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        fd = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            last = max(self._last, self._read(fd))
            wait = last + self.interval - self.clock()
            if wait > 0:
                log.debug("waiting %.1fs to keep %ss between requests", wait, self.interval)
                self.sleep(wait)
            try:
                yield
            finally:
                self._last = self.clock()
                if fd is not None:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, repr(self._last).encode(), 0)
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    @staticmethod
    def _read(fd: int | None) -> float:
        if fd is None:
            return 0.0
        try:
            return float(os.pread(fd, 64, 0).decode() or 0)
        except ValueError:
            return 0.0


class _TooLarge(Exception):
    pass


class Http:
    """GET with retries, validators and throttles. One instance (one connection pool) a run."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        client: httpx.Client | None = None,
        clock: Clock = time.time,
        sleep: Sleeper = time.sleep,
        jitter: Callable[[], float] = random.random,
        throttles: Mapping[str, Throttle] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self.throttles = dict(throttles or {})
        self.budget = FailureBudget(settings.failure_budget_seconds)
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=True,
            headers={"User-Agent": user_agent(settings.contact)},
        )

    def close(self) -> None:
        self.client.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        validators: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        throttle: str | None = None,
    ) -> Fetched:
        """GET ``url``, retrying what is worth retrying; raise SourceError saying why not."""
        if not url.lower().startswith(("http://", "https://")):
            raise SourceError(f"{url}: only http:// and https:// URLs are fetched")
        request_headers = dict(headers or {})
        if validators:
            if validators.get("etag"):
                request_headers["If-None-Match"] = validators["etag"]
            if validators.get("last_modified"):
                request_headers["If-Modified-Since"] = validators["last_modified"]
        shown = str(httpx.URL(url, params=params)) if params else url
        server = httpx.URL(url).netloc.decode("ascii", "replace")
        attempts = self.settings.retries + 1
        retries: list[str] = []
        for attempt in range(1, attempts + 1):
            self._within_budget(server, shown)
            started = self.clock()
            try:
                with self._slot(throttle):
                    started = self.clock()  # waiting for the throttle is no failure
                    response, content = self._send(url, params, request_headers)
            except _TooLarge:
                raise SourceError(
                    f"{shown}: the response is larger than {self.settings.max_response_mb:g} MB",
                    hint="raise [http] max_response_mb if this source is really that large",
                ) from None
            except httpx.TimeoutException:
                reason, wait = f"no answer within {self.settings.timeout:g}s", None
            except httpx.RemoteProtocolError as exc:
                reason, wait = f"the connection broke off (truncated response: {exc})", None
            except httpx.TransportError as exc:
                reason, wait = f"cannot connect ({type(exc).__name__}: {exc})", None
            else:
                if response.status_code == 304:
                    return Fetched(
                        shown, 304, b"", "", True, dict(validators or {}), tuple(retries)
                    )
                if response.status_code < 400:
                    return Fetched(
                        shown,
                        response.status_code,
                        content,
                        response.headers.get("content-type", ""),
                        False,
                        _validators(response.headers),
                        tuple(retries),
                    )
                if response.status_code not in RETRY_STATUSES:
                    raise _status_error(shown, response)
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                wait = self._server_wait(response.headers)
            self.budget.charge(server, self.clock() - started)
            if attempt == attempts:
                raise SourceError(
                    f"{shown}: {reason} (gave up after {attempts} attempts)",
                    hint="the source is skipped for this run; its papers come on the next "
                    "successful run",
                )
            delay = self._backoff(attempt) if wait is None else wait
            if delay > self.settings.max_wait:
                raise SourceError(
                    f"{shown}: {reason}; the server asks to wait {delay:.0f}s, longer than "
                    f"[http] max_wait ({self.settings.max_wait:g}s)",
                    hint="the source is skipped for this run and read again on the next one",
                )
            if delay > self.budget.left(server):  # waiting it out would pass the budget
                self.budget.close(server)
                self._within_budget(server, shown)
            log.warning(
                "%s: %s; retry %d of %d in %.1fs", shown, reason, attempt, attempts - 1, delay
            )
            retries.append(f"{reason}; waited {delay:.1f}s")
            self.sleep(delay)
            self.budget.charge(server, delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _within_budget(self, server: str, shown: str) -> None:
        """Refuse to ask ``server`` again once its failures have cost the run its budget:
        a hung host would otherwise cost a timeout per attempt, page and day."""
        if self.budget.exhausted(server):
            raise SourceError(
                f"{shown}: not requested: {self.budget.refuse(server)} in this run "
                f"([http] failure_budget_seconds = {self.settings.failure_budget_seconds:g})",
                hint="the source is skipped for this run; its papers come on the next "
                "successful run",
            )

    def given_up(self) -> list[str]:
        """A report line for each host this run stopped asking."""
        return [
            f"http: {self.budget.verdict(server)}; "
            f"{self.budget.refused.get(server, 0)} requests not made"
            for server in self.budget.given_up()
        ]

    @contextmanager
    def _slot(self, name: str | None) -> Iterator[None]:
        throttle = self.throttles.get(name) if name else None
        if throttle is None:
            yield
        else:
            with throttle.slot():
                yield

    def _send(
        self, url: str, params: Mapping[str, str | int] | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        cap = int(self.settings.max_response_mb * 1024 * 1024)
        with self.client.stream("GET", url, params=params, headers=headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _TooLarge
                chunks.append(chunk)
            return response, b"".join(chunks)

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff * 2 ** (attempt - 1)
        return min(self.settings.max_wait, base * (0.5 + self.jitter()))

    def _server_wait(self, headers: httpx.Headers) -> float | None:
        """How long the server asked us to wait, from Retry-After or RateLimit, if at all."""
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        if retry_after:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - self.clock())
        ratelimit = _RATELIMIT_RESET.search(headers.get("ratelimit", ""))
        if ratelimit:
            return float(ratelimit.group(1))
        return None


def user_agent(contact: str | None) -> str:
    agent = f"paper-digest/{__version__} (self-hosted research paper digest"
    return f"{agent}; {contact})" if contact else f"{agent})"


def _validators(headers: httpx.Headers) -> dict[str, str]:
    kept: dict[str, str] = {}
    if headers.get("etag"):
        kept["etag"] = headers["etag"]
    if headers.get("last-modified"):
        kept["last_modified"] = headers["last-modified"]
    return kept


_STATUS_HINTS = {
    400: "the server refused the request; check the source's settings (query, categories)",
    401: "the server wants credentials; check the token (token_env) of this source",
    403: "the server refused access; check the token, or whether this client is blocked",
    404: "nothing at this address; check base_url, url or the categories of this source",
    410: "this address is gone; update the source's URL",
}


def _status_error(url: str, response: httpx.Response) -> SourceError:
    status = response.status_code
    hint = _STATUS_HINTS.get(status, "the source is skipped for this run")
    return SourceError(f"{url}: HTTP {status} {response.reason_phrase}".strip(), hint=hint)
