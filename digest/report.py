"""The run report: what each source and each subscriber got, in a form for humans and JSON,
with every configured secret taken out of it (and of the logs) before it is written."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from digest.config import Config
    from digest.store import Store

REDACTED = "[redacted]"
# Shorter values occur in ordinary text (dates, counts, words): replacing them would garble
# reports while hiding nothing a guess would not find.
MIN_SECRET_LENGTH = 6


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every configured secret in a text: the net under every report and error.

    The code never puts a secret in a message on purpose; this catches what a server or a
    library echoes back (a relay quoting the login, a URL with a password in an error).
    A run may know thousands of secrets (every private feed's token), so secrets are
    looked up by their first characters at each place of the text: the cost of a text is
    its length, not the number of secrets.
    """

    secrets: tuple[str, ...] = ()  # longest first, so a secret inside another goes too
    _by_start: dict[str, tuple[str, ...]] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_start: dict[str, list[str]] = {}
        for secret in self.secrets:  # kept longest first within each start
            by_start.setdefault(secret[:MIN_SECRET_LENGTH], []).append(secret)
        for start, found in by_start.items():
            self._by_start[start] = tuple(found)

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        found = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
        return cls(tuple(sorted(found, key=lambda v: (-len(v), v))))

    def text(self, text: str) -> str:
        if not self._by_start:
            return text
        parts: list[str] = []
        done = at = 0
        while at <= len(text) - MIN_SECRET_LENGTH:
            candidates = self._by_start.get(text[at : at + MIN_SECRET_LENGTH], ())
            secret = next((s for s in candidates if text.startswith(s, at)), None)
            if secret is None:
                at += 1
                continue
            parts += (text[done:at], REDACTED)
            at = done = at + len(secret)
        return "".join((*parts, text[done:])) if parts else text

    def json(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.json(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(item) for item in value]
        return value


def redactor_for(config: Config, store: Store | None = None) -> Redactor:
    """The secrets a config knows: the values of its ``*_env`` variables (each of the
    ``[web]`` secrets too), the password of a store URL, and the subscribers' feed
    tokens; with ``store``, the feed tokens of the readers it keeps as well."""
    names = [config.email.password_env, config.store.url_env]
    names += [getattr(source, "token_env", None) for source in config.sources]
    values = [os.environ.get(name) for name in names if name]
    if config.web.secret_env:
        values += os.environ.get(config.web.secret_env, "").split()  # rotation: several
    for url in (config.store.url, os.environ.get(config.store.url_env or "")):
        if url:
            values.append(_url_password(url))
    values += [subscriber.feed_token for subscriber in config.subscribers]
    if store is not None:
        values += [token for token, _status in store.reader_feed_tokens().values()]
    return Redactor.of(values)


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class RedactingFilter(logging.Filter):
    """A log filter that passes every record, with the secrets taken out of its message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class Timings(dict[str, float]):
    """Seconds spent per stage of a run, added up over subscribers (in the JSON report);
    with worker processes, added up over them too (each one's are in worker_timings)."""

    def add(self, stage: str, seconds: float) -> None:
        self[stage] = self.get(stage, 0.0) + seconds

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)


def _paper_json(paper: dict[str, Any]) -> dict[str, Any]:
    """A selected paper for the JSON report: its matches as objects."""
    return {
        **paper,
        "matched": [
            {"term": m.term, "field": m.field, "count": m.count, "points": m.points}
            for m in paper.get("matched", ())
        ],
    }


@dataclass(slots=True)
class SourceReport:
    papers: int = 0  # listings read
    new: int = 0  # papers the store had never seen
    error: str | None = None  # what failed, the URL or file, and what to do
    warnings: list[str] = field(default_factory=list)
    stale: bool = False  # the listing has not moved on since the last run when it should have
    requests: list[dict[str, Any]] = field(default_factory=list)  # url, status, retries


@dataclass(slots=True)
class DeliveryReport:
    digest: str  # the digest's slug, e.g. 2026-03-14
    channel: str
    # delivered | failed | unknown (sent, not confirmed; sent once more next run) |
    # unconfirmed (the resend unknown too; not sent again) | pending (not tried: the
    # channel gave up on its server for this run)
    status: str
    detail: str  # where it went, or why it failed


@dataclass(slots=True)
class SubscriberReport:
    candidates: int = 0  # papers new to this subscriber
    selected: int = 0  # papers chosen for today's digest
    delivered: int = 0  # papers of digests delivered on every channel in this run
    error: str | None = None
    papers: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RunReport:
    date: date
    dry_run: bool = False
    detail: bool = True  # whether subscribers' reports list their papers
    run_id: int | None = None
    error: str | None = None
    sources: dict[str, SourceReport] = field(default_factory=dict)
    subscribers: dict[str, SubscriberReport] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    worker_timings: list[Timings] = field(default_factory=list)  # per worker process
    # Servers the run stopped asking, a line each, e.g. "http: gave up on export.arxiv.org
    # after 62 s of failures; 3 requests not made" (the email ones come from deliveries).
    breakers: list[str] = field(default_factory=list)
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and all(s.error is None for s in self.sources.values())
            and all(s.error is None for s in self.subscribers.values())
        )

    def gave_up(self) -> list[str]:
        """What the run stopped trying, a line each: the hosts of ``breakers``, and each
        channel's server with the number of digests it left pending ("email: gave up on
        smtp.example.org:587 after 62 s of failures; 37 digests left pending"). With
        worker processes, each gives up on its own, and has its own line."""
        left: dict[tuple[str, str], int] = {}
        for sub in self.subscribers.values():
            for delivery in sub.deliveries:
                if delivery.status == "pending":
                    key = (delivery.channel, delivery.detail)
                    left[key] = left.get(key, 0) + 1
        lines = [
            f"{channel}: {why}; {count} digest{'s' if count != 1 else ''} left pending"
            for (channel, why), count in left.items()
        ]
        return [*self.breakers, *lines]

    def summary_json(self) -> dict[str, Any]:
        """The report without the papers: what the store keeps of each run."""
        return self.to_json(papers=False)

    def to_json(self, *, papers: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "date": self.date.isoformat(),
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "error": self.error,
            "sources": {name: asdict(source) for name, source in self.sources.items()},
            "subscribers": {
                name: {
                    "candidates": sub.candidates,
                    "selected": sub.selected,
                    "delivered": sub.delivered,
                    "error": sub.error,
                    "warnings": sub.warnings,
                    "deliveries": [
                        {
                            "digest": d.digest,
                            "channel": d.channel,
                            "status": d.status,
                            "detail": d.detail,
                        }
                        for d in sub.deliveries
                    ],
                    **({"papers": [_paper_json(p) for p in sub.papers]} if papers else {}),
                }
                for name, sub in self.subscribers.items()
            },
        }
        data["timings"] = {stage: round(seconds, 4) for stage, seconds in self.timings.items()}
        data["worker_timings"] = [
            {stage: round(seconds, 4) for stage, seconds in timings.items()}
            for timings in self.worker_timings
        ]
        data["gave_up"] = self.gave_up()
        data["ok"] = self.ok
        return self.redactor.json(data)
