"""Subscribers, what they are owed, their digests and the deliveries of those digests.

What a subscriber is owed: every paper stored after its last digest's *watermark* (the
highest paper row id that digest covered), first seen by today, and not in its ledger. A
subscriber without a digest yet is owed the papers first seen since it joined (minus
``backfill_days``). Row ids only grow, so a watermark says "everything up to here was
offered" without a row per paper; the ledger keeps the chosen papers (and the rare
considered paper that a watermark cannot cover).

A digest is recorded (its chosen papers, its watermark, one pending delivery per channel)
before anything is delivered; a delivery is marked done only once its channel confirmed.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from digest.models import Digest, FeedItem, Match, Scored, StoredPaper
from digest.store.base import CHUNK, StoreBase
from digest.store.schema import deliveries, digests, ledger, papers, subscribers


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    digest_id: int
    digest_date: date
    seq: int
    channel: str
    attempts: int
    last_error: str | None
    status: str = "pending"  # pending | failed | unknown (a copy may have arrived)


# How many copies of one digest may reach a mail server without its confirmation: the
# first, and the one resend a later run makes. A delivery whose resend is unknown too is
# "unconfirmed" and never sent again (the reader most likely has it).
MAX_UNKNOWN_SENDS = 2
UNFINISHED = ("pending", "failed", "unknown")  # deliveries a run still tries


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str  # selected | considered
    digest_date: date
    seq: int
    position: int | None  # 0-based place in the digest, for chosen papers
    digest_size: int
    score: float | None  # None for a considered paper (only its digest is known)
    matches: tuple[Match, ...]
    section: str | None


@dataclass(frozen=True, slots=True)
class Owed:
    """Where a subscriber stands: when it joined and how far its digests reached."""

    joined: date
    watermark: int | None


def _highest_watermark(subscriber: Any) -> Any:
    """A subscriber's highest watermark, as a scalar subquery: one seek in the
    (subscriber, watermark) index, where an aggregate over its digests would read them all,
    a year of history being 365 rows a subscriber."""
    return (
        select(func.max(digests.c.watermark))
        .where(digests.c.subscriber == subscriber)
        .scalar_subquery()
    )


def _standing(conn: Any, names: Sequence[str]) -> dict[str, Owed]:
    """Where each registered subscriber of ``names`` stands: a seek each, in IN queries."""
    found: dict[str, Owed] = {}
    for start in range(0, len(names), CHUNK):
        rows = conn.execute(
            select(
                subscribers.c.name,
                subscribers.c.created_on,
                _highest_watermark(subscribers.c.name),
            ).where(subscribers.c.name.in_(names[start : start + CHUNK]))
        )
        found.update((name, Owed(joined, mark)) for name, joined, mark in rows)
    return found


# Statements run once per digest, built once. Two subqueries: each one seek.
_LAST_DIGEST = select(
    _highest_watermark(bindparam("subscriber")),
    select(func.max(digests.c.seq))
    .where(
        digests.c.subscriber == bindparam("subscriber"),
        digests.c.digest_date == bindparam("day"),
    )
    .scalar_subquery(),
)
_NEW_DIGEST = insert(digests)
_DELIVERED = (
    update(deliveries)
    .where(deliveries.c.digest_id == bindparam("digest"), deliveries.c.channel == bindparam("on"))
    .values(
        status="done",
        delivered_at=bindparam("at"),
        attempts=deliveries.c.attempts + 1,
        last_error=None,
    )
)


class Pending:
    """Papers owed to many subscribers at once, from one read of the store.

    Built once a run; ``for_subscriber`` is then a slice of a sorted list, so serving ten
    thousand readers does not mean ten thousand queries over the papers table.
    """

    def __init__(self, papers_: list[StoredPaper], offered: dict[str, set[int]]) -> None:
        self.papers = papers_  # sorted by row id, all first seen by the run's date
        self.uids = [p.uid for p in papers_]
        self.offered = offered
        self._slices: dict[object, list[StoredPaper]] = {}

    def for_subscriber(
        self, name: str, owed: Owed, today: date, backfill_days: int
    ) -> list[StoredPaper]:
        if owed.watermark is not None:
            start = bisect_right(self.uids, owed.watermark)
            if start not in self._slices:  # readers at the same watermark share one list
                self._slices[start] = self.papers[start:]
            chosen = self._slices[start]
        else:
            since = owed.joined - timedelta(days=backfill_days)
            if since not in self._slices:
                self._slices[since] = [p for p in self.papers if p.first_seen >= since]
            chosen = self._slices[since]
        offered = self.offered.get(name)
        if offered:
            chosen = [p for p in chosen if p.uid not in offered]
        return chosen


class DigestsMixin(StoreBase):
    # --- subscribers and what they are owed ---------------------------------------------

    def register_subscribers(self, names: Sequence[str], today: date) -> dict[str, Owed]:
        """Record subscribers on their first run; return where each one stands."""
        with self.transaction() as conn:
            standing = _standing(conn, names)
            new = [{"name": n, "created_on": today} for n in names if n not in standing]
            if new:  # another process may register them first: its dates are kept
                dialect = postgresql if self.postgres else sqlite
                conn.execute(dialect.insert(subscribers).on_conflict_do_nothing(), new)
                standing.update(_standing(conn, [row["name"] for row in new]))
        return {name: standing[name] for name in names}

    def watermark_of(self, subscriber: str) -> int | None:
        """How far the subscriber's digests reach (None before the first)."""
        return self.watermarks_of([subscriber]).get(subscriber)

    def watermarks_of(self, names: Sequence[str]) -> dict[str, int]:
        """``watermark_of`` for many subscribers at once (those with no digest are left out)."""
        return {
            name: owed.watermark
            for name, owed in _standing(self.conn, names).items()
            if owed.watermark is not None
        }

    def last_digest_dates(self, names: Sequence[str]) -> dict[str, date]:
        """The date of each subscriber's latest digest (those with none are left out): a
        seek each in the (subscriber, date, seq) index, in IN queries."""
        found: dict[str, date] = {}
        latest = (
            select(func.max(digests.c.digest_date))
            .where(digests.c.subscriber == subscribers.c.name)
            .scalar_subquery()
        )
        for start in range(0, len(names), CHUNK):
            rows = self.conn.execute(
                select(subscribers.c.name, latest).where(
                    subscribers.c.name.in_(names[start : start + CHUNK])
                )
            )
            found.update((name, day) for name, day in rows if day is not None)
        return found

    def register_subscriber(self, name: str, today: date) -> date:
        """Record a subscriber on its first run; return the date it was first seen."""
        return self.register_subscribers([name], today)[name].joined

    def pending_for(self, owed: dict[str, Owed], today: date, backfill: dict[str, int]) -> Pending:
        """Everything the given subscribers are owed, read in two queries."""
        marks = [o.watermark for o in owed.values() if o.watermark is not None]
        windows = [
            o.joined - timedelta(days=backfill.get(n, 0))
            for n, o in owed.items()
            if o.watermark is None
        ]
        if not owed:
            return Pending([], {})
        lowest = min(marks) if marks else None
        if windows:  # someone without a digest yet: everything first seen since it joined
            pool = self.papers_after(0, today, since=min(windows))
            if lowest is not None:
                pool = sorted(
                    {p.uid: p for p in pool + self.papers_after(lowest, today)}.values(),
                    key=lambda p: p.uid,
                )
        else:
            pool = self.papers_after(lowest or 0, today)
        floor = min((p.uid for p in pool), default=0) - 1
        offered: dict[str, set[int]] = {}
        names = list(owed)
        for start in range(0, len(names), CHUNK):  # a database caps the parameters of a query
            rows = self.conn.execute(
                select(ledger.c.subscriber, ledger.c.paper_id).where(
                    ledger.c.paper_id > floor,
                    ledger.c.subscriber.in_(names[start : start + CHUNK]),
                )
            )
            for name, uid in rows:
                offered.setdefault(name, set()).add(uid)
        return Pending(pool, offered)

    def pending_papers(
        self, subscriber: str, today: date, joined: date, backfill_days: int = 0
    ) -> list[StoredPaper]:
        """Papers not yet offered to ``subscriber`` that it is owed on ``today``."""
        owed = self.register_subscribers([subscriber], joined)
        owed = {subscriber: Owed(joined, owed[subscriber].watermark)}
        return self.pending_for(owed, today, {subscriber: backfill_days}).for_subscriber(
            subscriber, owed[subscriber], today, backfill_days
        )

    # --- digests and deliveries ---------------------------------------------------------

    def create_digest(
        self,
        subscriber: str,
        digest_date: date,
        selected: Sequence[Scored],
        candidates: Sequence[StoredPaper],
        channels: Sequence[str],
        run_id: int | None,
        now: datetime,
    ) -> Digest:
        """Record one digest (see ``create_digests``)."""
        return self.create_digests(
            subscriber, digest_date, [selected], candidates, channels, run_id, now
        )[0]

    def create_digests(
        self,
        subscriber: str,
        digest_date: date,
        parts: Sequence[Sequence[Scored]],
        candidates: Sequence[StoredPaper],
        channels: Sequence[str],
        run_id: int | None,
        now: datetime,
        *,
        served: bool = False,
    ) -> list[Digest]:
        """Record the digest of these candidates, its chosen papers in ``parts`` (one
        digest each, with consecutive numbers that day: the emails of a digest too large
        for one), in one transaction: their papers in the ledger, their watermark, one
        delivery per channel each, and with ``served`` the subscriber's ``served_at``.

        After this commits, the candidates are never offered again; the chosen papers count
        as delivered on a channel only once that channel's delivery of their part is done.
        """
        parts = [tuple(part) for part in parts] or [()]
        chosen = {item.paper.uid for part in parts for item in part}
        uids = self._sorted_uids(candidates)
        if not chosen.issubset(uids):  # chosen papers are candidates; be safe all the same
            uids = sorted(set(uids) | chosen)
        with self.transaction() as conn:
            previous, last_seq = conn.execute(
                _LAST_DIGEST, {"subscriber": subscriber, "day": digest_date}
            ).one()
            watermark = self._next_watermark(conn, digest_date, uids, previous)
            if served:  # its cadence's period is done, whatever becomes of the deliveries
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.name == subscriber)
                    .values(served_at=now)
                )
            above = uids if watermark is None else uids[bisect_right(uids, watermark) :]
            uncovered = [u for u in above if u not in chosen]
            made = []
            for number, part in enumerate(parts):
                seq = 1 + (last_seq or 0) + number
                digest_id = int(
                    conn.execute(
                        _NEW_DIGEST,
                        {
                            "subscriber": subscriber,
                            "digest_date": digest_date,
                            "seq": seq,
                            "candidates": len(uids),
                            "run_id": run_id,
                            "created_at": now,
                            "watermark": watermark,
                        },
                    ).inserted_primary_key[0]
                )
                rows = [
                    _ledger_row(subscriber, digest_id, item, "selected", i)
                    for i, item in enumerate(part)
                ]
                if number == 0:
                    rows += [_considered_row(subscriber, digest_id, uid) for uid in uncovered]
                if rows:
                    conn.execute(insert(ledger), rows)
                if part:
                    conn.execute(
                        insert(deliveries),
                        [
                            {
                                "digest_id": digest_id,
                                "channel": channel,
                                "status": "pending",
                                "attempts": 0,
                            }
                            for channel in channels
                        ],
                    )
                made.append(
                    Digest(
                        subscriber=subscriber,
                        date=digest_date,
                        seq=seq,
                        papers=part,
                        candidates=len(uids),
                        digest_id=digest_id,
                    )
                )
        return made

    def pending_deliveries(self, subscriber: str) -> list[PendingDelivery]:
        """Deliveries of this subscriber's digests that no channel has confirmed yet."""
        return self.pending_deliveries_of([subscriber]).get(subscriber, [])

    def pending_deliveries_of(self, names: Sequence[str]) -> dict[str, list[PendingDelivery]]:
        """Unconfirmed deliveries of many subscribers, in one query."""
        found: dict[str, list[PendingDelivery]] = {}
        wanted = set(names)
        rows = self.conn.execute(
            select(
                digests.c.subscriber,
                deliveries.c.digest_id,
                digests.c.digest_date,
                digests.c.seq,
                deliveries.c.channel,
                deliveries.c.attempts,
                deliveries.c.last_error,
                deliveries.c.status,
            )
            .join(digests, digests.c.id == deliveries.c.digest_id)
            # Few deliveries are ever unfinished: found by the status index, whatever the
            # number of subscribers asked about (filtered here).
            .where(deliveries.c.status.in_(UNFINISHED))
            .order_by(digests.c.digest_date, digests.c.seq, deliveries.c.channel)
        )
        for name, *rest in rows:
            if name in wanted:
                found.setdefault(name, []).append(PendingDelivery(*rest))
        return found

    def load_digest(self, digest_id: int) -> Digest:
        """A recorded digest with its chosen papers in digest order."""
        head = self.conn.execute(select(digests).where(digests.c.id == digest_id)).mappings().one()
        rows = self.conn.execute(
            select(ledger.c.paper_id, ledger.c.score, ledger.c.matches, ledger.c.section)
            .where(ledger.c.digest_id == digest_id, ledger.c.status == "selected")
            .order_by(ledger.c.position)
        ).all()
        stored = {p.uid: p for p in self.get_papers([row.paper_id for row in rows])}
        return Digest(
            subscriber=head["subscriber"],
            date=head["digest_date"],
            seq=head["seq"],
            papers=tuple(
                _scored(stored[row.paper_id], row) for row in rows if row.paper_id in stored
            ),
            candidates=head["candidates"],
            digest_id=digest_id,
        )

    def mark_delivered(self, digest_id: int, channel: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(_DELIVERED, {"digest": digest_id, "on": channel, "at": now})

    def mark_failed(self, digest_id: int, channel: str, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.digest_id == digest_id, deliveries.c.channel == channel)
                .values(status="failed", attempts=deliveries.c.attempts + 1, last_error=error)
            )

    def mark_unknown(self, digest_id: int, channel: str, error: str) -> str:
        """Record that a copy went out and no confirmation came back; return the new status:
        ``unknown`` (a later run sends it once more) or, after MAX_UNKNOWN_SENDS such
        copies, ``unconfirmed`` (never sent again)."""
        sends = deliveries.c.unknown_sends + 1
        with self.transaction() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.digest_id == digest_id, deliveries.c.channel == channel)
                .values(
                    status=case((sends >= MAX_UNKNOWN_SENDS, "unconfirmed"), else_="unknown"),
                    unknown_sends=sends,
                    attempts=deliveries.c.attempts + 1,
                    last_error=error,
                )
            )
            status = conn.execute(
                select(deliveries.c.status).where(
                    deliveries.c.digest_id == digest_id, deliveries.c.channel == channel
                )
            ).scalar_one()
        return str(status)

    def feed_items(
        self, subscriber: str, limit: int, include_digest: int | None = None
    ) -> list[FeedItem]:
        """The latest papers delivered to the subscriber's feed, newest digest first: the
        newest ``limit``, and in any case every paper of the digests of its newest day.

        A feed reader polls now and then: the digests of a day (several when one was too
        large for an email, or after downtime) stay in the feed whole, so that no paper
        recorded as delivered falls off it before it was ever shown. ``include_digest``
        adds a digest whose feed delivery is being made right now.
        """
        delivered = or_(deliveries.c.status == "done", digests.c.id == include_digest)
        feed = (
            select(
                ledger.c.paper_id,
                ledger.c.score,
                ledger.c.matches,
                ledger.c.section,
                ledger.c.position,
                digests.c.digest_date,
                digests.c.seq,
                deliveries.c.delivered_at,
            )
            .join(digests, digests.c.id == ledger.c.digest_id)
            .join(
                deliveries,
                and_(deliveries.c.digest_id == digests.c.id, deliveries.c.channel == "feed"),
            )
            .where(ledger.c.subscriber == subscriber, ledger.c.status == "selected", delivered)
        )
        newest_day = (
            select(func.max(digests.c.digest_date))
            .join(
                deliveries,
                and_(deliveries.c.digest_id == digests.c.id, deliveries.c.channel == "feed"),
            )
            .where(digests.c.subscriber == subscriber, delivered)
            .scalar_subquery()
        )
        order = (digests.c.digest_date.desc(), digests.c.seq.desc(), ledger.c.position)
        latest = self.conn.execute(feed.order_by(*order).limit(limit)).all()
        whole = self.conn.execute(
            feed.where(or_(digests.c.digest_date == newest_day, digests.c.id == include_digest))
        ).all()
        found = {row.paper_id: row for row in [*latest, *whole]}
        rows = sorted(found.values(), key=_newest_first)
        stored = {p.uid: p for p in self.get_papers([row.paper_id for row in rows])}
        return [
            FeedItem(_scored(stored[row.paper_id], row), row.digest_date, row.delivered_at)
            for row in rows
            if row.paper_id in stored
        ]

    def delivered_digests(self, subscriber: str, channel: str) -> list[tuple[date, int]]:
        """(date, seq) of every digest delivered on ``channel``, newest first."""
        rows = self.conn.execute(
            select(digests.c.digest_date, digests.c.seq)
            .join(deliveries, deliveries.c.digest_id == digests.c.id)
            .where(
                digests.c.subscriber == subscriber,
                deliveries.c.channel == channel,
                deliveries.c.status == "done",
            )
            .order_by(digests.c.digest_date.desc(), digests.c.seq.desc())
        )
        return [(row.digest_date, row.seq) for row in rows]

    def ledger_entry(self, subscriber: str, uid: int) -> LedgerEntry | None:
        """What was decided about one paper for one subscriber, if it was offered."""
        row = self.conn.execute(
            select(
                ledger.c.status,
                ledger.c.position,
                ledger.c.score,
                ledger.c.matches,
                ledger.c.section,
                digests.c.digest_date,
                digests.c.seq,
                digests.c.id,
            )
            .join(digests, digests.c.id == ledger.c.digest_id)
            .where(ledger.c.subscriber == subscriber, ledger.c.paper_id == uid)
        ).one_or_none()
        if row is not None:
            return LedgerEntry(
                status=row.status,
                digest_date=row.digest_date,
                seq=row.seq,
                position=row.position,
                digest_size=self._digest_size(row.id),
                score=row.score if row.status == "selected" else None,
                matches=matches_of(row.matches),
                section=row.section,
            )
        covering = self.conn.execute(
            select(digests.c.id, digests.c.digest_date, digests.c.seq)
            .where(digests.c.subscriber == subscriber, digests.c.watermark >= uid)
            .order_by(digests.c.id)
            .limit(1)
        ).one_or_none()
        if covering is None:
            return None
        first_seen = self.conn.execute(
            select(papers.c.first_seen).where(papers.c.id == uid)
        ).scalar()
        if first_seen is not None and first_seen > covering.digest_date:
            return None  # stored later, under an older id after a merge: not offered yet
        return LedgerEntry(
            "considered",
            covering.digest_date,
            covering.seq,
            None,
            self._digest_size(covering.id),
            None,
            (),
            None,
        )

    def _sorted_uids(self, candidates: Sequence[StoredPaper]) -> list[int]:
        """The candidates' ids, ascending; remembered for the last list, since many
        subscribers are owed the very same list (see Pending)."""
        cached = getattr(self, "_uids_of", None)
        if cached is not None and cached[0] is candidates:
            return cached[1]
        uids = sorted(p.uid for p in candidates)
        self._uids_of = (candidates, uids)
        return uids

    @staticmethod
    def _next_watermark(conn: Any, day: date, uids: list[int], previous: int | None) -> int | None:
        """How far this digest covers: its highest candidate, unless a paper stored in
        between belongs to a later day (a replayed date); it stays owed, so the watermark
        stops below it and candidates above it get a ledger row of their own."""
        if not uids:
            return None
        later = None
        newest = conn.execute(select(func.max(papers.c.first_seen))).scalar()
        if newest is not None and newest > day:  # only when replaying an earlier date
            later = conn.execute(
                select(func.min(papers.c.id)).where(
                    papers.c.id > (previous or 0),
                    papers.c.id < uids[-1],
                    papers.c.first_seen > day,
                )
            ).scalar()
        top = uids[-1] if later is None else later - 1
        return max(top, previous) if previous is not None else top

    def _digest_size(self, digest_id: int) -> int:
        size = self.conn.execute(
            select(func.count())
            .select_from(ledger)
            .where(ledger.c.digest_id == digest_id, ledger.c.status == "selected")
        ).scalar()
        return int(size or 0)


def _newest_first(row: Any) -> tuple[int, int, int]:
    """The feed's order: newest digest first, each digest's papers in digest order."""
    return (-row.digest_date.toordinal(), -row.seq, row.position or 0)


def _considered_row(subscriber: str, digest_id: int, uid: int) -> dict[str, Any]:
    return {
        "subscriber": subscriber,
        "paper_id": uid,
        "digest_id": digest_id,
        "status": "considered",
        "position": None,
        "score": 0.0,
        "matches": "[]",
        "section": None,
    }


def _scored(paper: StoredPaper, row: Any) -> Scored:
    matches = matches_of(row.matches)
    return Scored(paper, row.score, matches, row.section)


def _ledger_row(
    subscriber: str, digest_id: int, item: Scored, status: str, position: int | None
) -> dict[str, Any]:
    return {
        "subscriber": subscriber,
        "paper_id": item.paper.uid,
        "digest_id": digest_id,
        "status": status,
        "position": position,
        "score": item.score,
        "matches": json.dumps(item.matches, ensure_ascii=False),
        "section": item.section,
    }


def matches_of(stored: str) -> tuple[Match, ...]:
    """A ledger row's matches: JSON lists [term, field, count, points, kind, via] (as
    Match, a named tuple, is written), or objects with those keys (older stores)."""
    return tuple(Match(**m) if isinstance(m, dict) else Match(*m) for m in json.loads(stored))
