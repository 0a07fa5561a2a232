"""Runs (when, for which date, how they ended), per-source cursors, and the store's summary."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update

from digest.store.base import StoreBase
from digest.store.schema import (
    cursors,
    deliveries,
    digests,
    ledger,
    paper_keys,
    papers,
    readers,
    runs,
    subscribers,
)


@dataclass(slots=True)
class SubscriberSummary:
    name: str
    created_on: date
    digests: int = 0
    delivered_papers: int = 0
    considered_papers: int = 0
    pending_deliveries: int = 0  # unfinished ones, "unknown" included: a run tries them
    unknown_deliveries: int = 0  # sent, not confirmed: the next run sends them once more
    unconfirmed_deliveries: int = 0  # sent twice, never confirmed: not sent again
    last_digest: date | None = None


@dataclass(slots=True)
class StoreSummary:
    location: str
    schema_version: int
    papers: int
    papers_with_arxiv_id: int
    keys: int
    subscribers: list[SubscriberSummary] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    bouncing_readers: list[str] = field(default_factory=list)  # store readers, by name
    # Addresses the mail server refused for good: address, runs in a row, last reply.
    bounces: list[dict[str, Any]] = field(default_factory=list)
    opted_out: dict[str, int] = field(default_factory=dict)  # config readers, by reason


class RunsMixin(StoreBase):
    def start_run(self, digest_date: date, now: datetime) -> int:
        """Record a run as started; runs left ``running`` by a dead process become interrupted."""
        with self.transaction() as conn:
            running = (
                conn.execute(select(runs.c.id).where(runs.c.status == "running")).scalars().all()
            )
            dead = [run_id for run_id in running if not self.run_is_alive(run_id)]
            if dead:
                conn.execute(update(runs).where(runs.c.id.in_(dead)).values(status="interrupted"))
            run_id = int(
                conn.execute(
                    insert(runs).values(
                        digest_date=digest_date,
                        started_at=now,
                        status="running",
                        dry_run=int(self.dry_run),
                        pid=os.getpid(),
                        host=socket.gethostname(),
                    )
                ).inserted_primary_key[0]
            )
        if not self.dry_run:
            self.hold_run(run_id)
        return run_id

    def finish_run(self, run_id: int, status: str, report: dict[str, Any], now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, finished_at=now, report=json.dumps(report))
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
        return [
            {
                "id": row["id"],
                "date": row["digest_date"].isoformat(),
                "started_at": row["started_at"].isoformat(),
                "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
                "status": row["status"],
                "dry_run": bool(row["dry_run"]),
            }
            for row in rows
        ]

    # --- per-source cursors ------------------------------------------------------------

    def get_cursor(self, source: str) -> dict[str, Any]:
        value = self.conn.execute(select(cursors.c.data).where(cursors.c.source == source)).scalar()
        return json.loads(value) if value else {}

    def set_cursor(self, source: str, data: dict[str, Any], now: datetime) -> None:
        with self.transaction() as conn:
            changed = conn.execute(
                update(cursors)
                .where(cursors.c.source == source)
                .values(data=json.dumps(data), updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(cursors).values(source=source, data=json.dumps(data), updated_at=now)
                )

    # --- what the store holds -----------------------------------------------------------

    def _summarise_bounces(self, result: StoreSummary) -> None:
        """Who is not sent mail any more, and the addresses a mail server refuses."""
        result.bouncing_readers = list(
            self.conn.execute(
                select(readers.c.name).where(readers.c.status == "bouncing").order_by(readers.c.id)
            ).scalars()
        )
        result.bounces = [
            {
                "address": b.email_key,
                "runs": b.runs,
                "last_at": b.last_at,
                "last_reply": b.last_reply,
            }
            for b in self.bounce_list()  # type: ignore[attr-defined]
        ]
        for reason in self.opted_out().values():  # type: ignore[attr-defined]
            result.opted_out[reason] = result.opted_out.get(reason, 0) + 1

    def summary(self) -> StoreSummary:
        conn = self.conn
        count = func.count()
        result = StoreSummary(
            location=self.location,
            schema_version=self.schema_version,
            papers=conn.execute(select(count).select_from(papers)).scalar() or 0,
            papers_with_arxiv_id=conn.execute(
                select(count).select_from(papers).where(papers.c.arxiv_id.is_not(None))
            ).scalar()
            or 0,
            keys=conn.execute(select(count).select_from(paper_keys)).scalar() or 0,
            runs=self.last_runs(10),
        )
        self._summarise_bounces(result)
        for name, created_on in conn.execute(
            select(subscribers.c.name, subscribers.c.created_on).order_by(subscribers.c.name)
        ):
            entry = SubscriberSummary(name=name, created_on=created_on)
            entry.digests, entry.last_digest, offered = conn.execute(
                select(
                    count, func.max(digests.c.digest_date), func.sum(digests.c.candidates)
                ).where(digests.c.subscriber == name)
            ).one()
            chosen = (
                conn.execute(
                    select(count)
                    .select_from(ledger)
                    .where(ledger.c.subscriber == name, ledger.c.status == "selected")
                ).scalar()
                or 0
            )
            entry.considered_papers = int(offered or 0) - chosen
            entry.delivered_papers = (
                conn.execute(
                    select(count)
                    .select_from(ledger)
                    .where(
                        ledger.c.subscriber == name,
                        ledger.c.status == "selected",
                        ~exists().where(
                            deliveries.c.digest_id == ledger.c.digest_id,
                            deliveries.c.status != "done",
                        ),
                    )
                ).scalar()
                or 0
            )
            unfinished = self.pending_deliveries(name)  # type: ignore[attr-defined]
            entry.pending_deliveries = len(unfinished)
            entry.unknown_deliveries = sum(d.status == "unknown" for d in unfinished)
            entry.unconfirmed_deliveries = (
                conn.execute(
                    select(count)
                    .select_from(deliveries)
                    .join(digests, digests.c.id == deliveries.c.digest_id)
                    .where(digests.c.subscriber == name, deliveries.c.status == "unconfirmed")
                ).scalar()
                or 0
            )
            result.subscribers.append(entry)
        return result
