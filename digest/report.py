"""The run report: what each source and each subscriber got, in a form for humans and JSON."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


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
        return data
