"""The run report: what each source and each subscriber got, in a form for humans and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


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
    status: str  # delivered | failed
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
    run_id: int | None = None
    error: str | None = None
    sources: dict[str, SourceReport] = field(default_factory=dict)
    subscribers: dict[str, SubscriberReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and all(s.error is None for s in self.sources.values())
            and all(s.error is None for s in self.subscribers.values())
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["ok"] = self.ok
        return data
