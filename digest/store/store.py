"""The state store: papers and their keys, subscribers' ledgers, digests, deliveries, runs.

All writes go through :meth:`Store.transaction`, and the pipeline commits at the points
where a crash must leave a consistent state: after each source's papers, after a digest
is made, after each channel confirmed a delivery. A dry run wraps the whole run in one
outer transaction that is rolled back at the end, so it sees its own writes and leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from digest.errors import StoreError
from digest.ids import normalize_title, parse_arxiv_id
from digest.merge import merge_papers
from digest.models import Digest, FeedItem, Match, Paper, Scored, StoredPaper
from digest.store.lock import RunLock
from digest.store.migrations import SCHEMA_VERSION, current_version, migrate
from digest.store.schema import (
    cursors,
    deliveries,
    digests,
    ledger,
    paper_keys,
    papers,
    runs,
    subscribers,
)

_CHUNK = 500  # keys per IN (...) query: well under every backend's parameter limit


def arxiv_key(arxiv_id: str) -> str:
    return f"arxiv:{arxiv_id.lower()}"


def title_key(key: str) -> str:
    return f"title:{key}"


def doi_key(doi: str) -> str:
    return f"doi:{doi.lower()}"


def _different_papers(a: Paper, b: Paper) -> bool:
    """Two listings that share a title but name different papers by arXiv id or DOI."""
    if a.arxiv_id and b.arxiv_id:
        return a.arxiv_id != b.arxiv_id
    if a.arxiv_id or b.arxiv_id:
        return False  # a journal version of an arXiv paper is the same paper
    return bool(a.doi and b.doi and a.doi.lower() != b.doi.lower())


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What storing one batch did: how many papers were new, and every paper's row id."""

    new: int
    uids: list[int]


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    digest_id: int
    digest_date: date
    seq: int
    channel: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str  # selected | considered
    digest_date: date
    seq: int
    position: int | None  # 0-based place in the digest, for selected papers
    digest_size: int
    score: float
    matches: tuple[Match, ...]
    section: str | None


@dataclass(slots=True)
class SubscriberSummary:
    name: str
    created_on: date
    digests: int = 0
    delivered_papers: int = 0
    considered_papers: int = 0
    pending_deliveries: int = 0
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


class Store:
    """One connection to the store for the length of a run (or a CLI command)."""

    def __init__(self, engine: Engine, location: str, lock_path: Path, *, dry_run: bool = False):
        self.engine = engine
        self.location = location
        self.dry_run = dry_run
        self.lock = RunLock(lock_path)
        self._depth = 0
        try:
            self.conn: Connection = engine.connect()
            with self.conn.begin():
                version = current_version(self.conn)
            if version != SCHEMA_VERSION:
                # Take the write lock up front: two processes creating or migrating the
                # same store at once must queue, not deadlock.
                self.conn.info["begin_immediate"] = True
                with self.conn.begin():
                    version = migrate(self.conn, location)
            self.schema_version = version
        except OperationalError as exc:
            raise StoreError(f"{location}: cannot open the store: {exc.orig}") from None
        self._outer = self.conn.begin() if dry_run else None

    @classmethod
    def open(cls, path: Path, *, dry_run: bool = False) -> Store:
        """Open (creating if needed) the SQLite store at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's folder: {exc}") from None
        engine = create_engine(f"sqlite:///{path}")
        _configure_sqlite(engine)
        return cls(engine, str(path), path.with_name(path.name + ".lock"), dry_run=dry_run)

    def close(self) -> None:
        if self._outer is not None:
            self._outer.rollback()
            self._outer = None
        self.lock.release()
        self.conn.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work: committed on success (a savepoint in a dry run), else rolled back.

        Reads outside a unit run in a transaction SQLAlchemy begins implicitly; it is
        ended here first, so every unit starts from the latest committed state.
        """
        nested = self._outer is not None or self._depth > 0
        if not nested and self.conn.in_transaction():
            self.conn.commit()
        unit = self.conn.begin_nested() if nested else self.conn.begin()
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            unit.rollback()
            raise
        else:
            unit.commit()
        finally:
            self._depth -= 1

    # --- runs -------------------------------------------------------------------------

    def start_run(self, digest_date: date, now: datetime) -> int:
        """Record a run as started; runs left ``running`` by a dead process become interrupted."""
        with self.transaction() as conn:
            conn.execute(
                update(runs).where(runs.c.status == "running").values(status="interrupted")
            )
            return int(
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

    # --- papers -----------------------------------------------------------------------

    def upsert_papers(self, batch: Sequence[Paper], seen_on: date, now: datetime) -> UpsertResult:
        """Store a batch of listings, merging each with the paper it is (by id or title).

        A paper known by title that now arrives with its arXiv id gains the id as an alias;
        if the id and the title had become two rows, they are merged into one. A title
        never joins a paper that carries a different arXiv id.
        """
        with self.transaction() as conn:
            keys_of = [self._keys(paper) for paper in batch]
            known = self._lookup_keys(conn, {k for keys in keys_of for k in keys})
            cache: dict[int, StoredPaper] = {
                sp.uid: sp for sp in self._load(conn, set(known.values()))
            }
            dirty: set[int] = set()
            uids: list[int] = []
            new = 0
            for paper, keys in zip(batch, keys_of, strict=True):
                matches = self._matching(paper, keys, known, cache)
                if not matches:
                    # A title already taken by another arXiv paper stays with that paper.
                    free = [key for key in keys if key not in known]
                    uid = self._insert(conn, paper, free, seen_on, now)
                    cache[uid] = StoredPaper(uid, paper, seen_on)
                    known.update(dict.fromkeys(free, uid))
                    new += 1
                    uids.append(uid)
                    continue
                survivor, *others = sorted(
                    matches, key=lambda u: (cache[u].paper.arxiv_id is None, u)
                )
                merged, first_seen = cache[survivor].paper, cache[survivor].first_seen
                for other in others:
                    merged = merge_papers(merged, cache[other].paper)
                    first_seen = min(first_seen, cache[other].first_seen)
                    self._absorb(conn, survivor, other)
                    known.update({k: survivor for k, v in known.items() if v == other})
                    dirty.discard(other)
                    del cache[other]
                merged = merge_papers(merged, paper)
                for key in keys:
                    if key not in known:
                        conn.execute(insert(paper_keys).values(key=key, paper_id=survivor))
                        known[key] = survivor
                if merged != cache[survivor].paper or first_seen != cache[survivor].first_seen:
                    cache[survivor] = StoredPaper(survivor, merged, first_seen)
                    dirty.add(survivor)
                uids.append(survivor)
            if dirty:
                conn.execute(
                    update(papers).where(papers.c.id == bindparam("uid")),
                    [
                        {
                            "uid": uid,
                            "data": json.dumps(cache[uid].paper.to_json()),
                            "arxiv_id": cache[uid].paper.arxiv_id,
                            "first_seen": cache[uid].first_seen,
                            "updated_at": now,
                        }
                        for uid in sorted(dirty)
                    ],
                )
        return UpsertResult(new=new, uids=uids)

    @staticmethod
    def _keys(paper: Paper) -> list[str]:
        keys = [arxiv_key(paper.arxiv_id)] if paper.arxiv_id else []
        if paper.doi and not paper.arxiv_id:  # journals and bioRxiv: the DOI names the paper
            keys.append(doi_key(paper.doi))
        if paper.title_key:
            keys.append(title_key(paper.title_key))
        return keys

    @staticmethod
    def _matching(
        paper: Paper, keys: list[str], known: dict[str, int], cache: dict[int, StoredPaper]
    ) -> set[int]:
        found: set[int] = set()
        for key in keys:
            uid = known.get(key)
            if uid is None:
                continue
            if key.startswith("title:") and _different_papers(paper, cache[uid].paper):
                continue  # same title, different paper
            found.add(uid)
        ids = {cache[u].paper.arxiv_id for u in found if cache[u].paper.arxiv_id}
        if len(ids) > 1:  # a title-only listing matching two arXiv papers: take the id's own
            found = {u for u in found if cache[u].paper.arxiv_id == paper.arxiv_id} or {min(found)}
        return found

    def _insert(
        self, conn: Connection, paper: Paper, keys: list[str], seen_on: date, now: datetime
    ) -> int:
        uid = int(
            conn.execute(
                insert(papers).values(
                    arxiv_id=paper.arxiv_id,
                    title_key=paper.title_key,
                    data=json.dumps(paper.to_json()),
                    first_seen=seen_on,
                    first_seen_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        )
        if keys:
            conn.execute(insert(paper_keys), [{"key": k, "paper_id": uid} for k in keys])
        return uid

    @staticmethod
    def _absorb(conn: Connection, survivor: int, other: int) -> None:
        """Fold paper ``other`` into ``survivor``: keys and ledger entries move over."""
        conn.execute(
            update(paper_keys).where(paper_keys.c.paper_id == other).values(paper_id=survivor)
        )
        already = select(ledger.c.subscriber).where(ledger.c.paper_id == survivor)
        conn.execute(
            delete(ledger).where(ledger.c.paper_id == other, ledger.c.subscriber.in_(already))
        )
        conn.execute(update(ledger).where(ledger.c.paper_id == other).values(paper_id=survivor))
        conn.execute(delete(papers).where(papers.c.id == other))

    @staticmethod
    def _lookup_keys(conn: Connection, keys: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            rows = conn.execute(
                select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.key.in_(chunk))
            )
            found.update({key: uid for key, uid in rows})
        return found

    @staticmethod
    def _load(conn: Connection, uids: set[int]) -> list[StoredPaper]:
        loaded: list[StoredPaper] = []
        ordered = sorted(uids)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            rows = conn.execute(
                select(papers.c.id, papers.c.data, papers.c.first_seen).where(
                    papers.c.id.in_(chunk)
                )
            )
            loaded.extend(_stored(row) for row in rows)
        return loaded

    def recent_papers(self, since: date, limit: int) -> list[StoredPaper]:
        """The papers first seen on or after ``since``, at most ``limit`` of the newest.

        Ranking uses them as its background: their document frequencies say which words
        are common in the field right now.
        """
        rows = self.conn.execute(
            select(papers.c.id, papers.c.data, papers.c.first_seen)
            .where(papers.c.first_seen >= since)
            .order_by(papers.c.id.desc())
            .limit(limit)
        )
        return sorted((_stored(row) for row in rows), key=lambda p: p.uid)

    def get_papers(self, uids: Sequence[int]) -> list[StoredPaper]:
        by_id = {sp.uid: sp for sp in self._load(self.conn, set(uids))}
        return [by_id[uid] for uid in uids if uid in by_id]

    def find_paper(self, ref: str) -> StoredPaper | None:
        """A stored paper by arXiv id (any spelling), ``title:KEY``, or its title."""
        parsed = parse_arxiv_id(ref)
        if parsed:
            key = arxiv_key(parsed[0])
        elif ref.startswith("title:"):
            key = ref
        else:
            key = title_key(normalize_title(ref))
        uid = self.conn.execute(
            select(paper_keys.c.paper_id).where(paper_keys.c.key == key)
        ).scalar()
        found = self._load(self.conn, {uid}) if uid is not None else []
        return found[0] if found else None

    # --- subscribers and what they are owed ---------------------------------------------

    def register_subscriber(self, name: str, today: date) -> date:
        """Record a subscriber on its first run; return the date it was first seen."""
        with self.transaction() as conn:
            created = conn.execute(
                select(subscribers.c.created_on).where(subscribers.c.name == name)
            ).scalar()
            if created is None:
                conn.execute(insert(subscribers).values(name=name, created_on=today))
                created = today
        return created

    def pending_papers(
        self, subscriber: str, today: date, joined: date, backfill_days: int = 0
    ) -> list[StoredPaper]:
        """Papers not yet offered to ``subscriber`` that it is owed on ``today``.

        That is every paper first seen since the subscriber's last digest (or, before its
        first digest, since it joined, minus ``backfill_days``), up to ``today``, and not
        in its ledger. Anything considered before is in the ledger, so it is not offered
        again; anything ingested while a run failed is still within the window.
        """
        last = self.conn.execute(
            select(func.max(digests.c.digest_date)).where(digests.c.subscriber == subscriber)
        ).scalar()
        start = last if last is not None else joined - timedelta(days=backfill_days)
        start = min(start, today)
        offered = exists().where(
            and_(ledger.c.subscriber == subscriber, ledger.c.paper_id == papers.c.id)
        )
        rows = self.conn.execute(
            select(papers.c.id, papers.c.data, papers.c.first_seen)
            .where(papers.c.first_seen >= start, papers.c.first_seen <= today, ~offered)
            .order_by(papers.c.id)
        )
        return [_stored(row) for row in rows]

    def ledger_entry(self, subscriber: str, uid: int) -> LedgerEntry | None:
        """What the ledger says about one paper and one subscriber, if it was offered."""
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
        if row is None:
            return None
        size = self.conn.execute(
            select(func.count())
            .select_from(ledger)
            .where(ledger.c.digest_id == row.id, ledger.c.status == "selected")
        ).scalar()
        return LedgerEntry(
            status=row.status,
            digest_date=row.digest_date,
            seq=row.seq,
            position=row.position,
            digest_size=int(size or 0),
            score=row.score,
            matches=tuple(Match(**m) for m in json.loads(row.matches)),
            section=row.section,
        )

    # --- digests and deliveries ---------------------------------------------------------

    def create_digest(
        self,
        subscriber: str,
        digest_date: date,
        selected: Sequence[Scored],
        considered: Sequence[Scored],
        channels: Sequence[str],
        run_id: int | None,
        now: datetime,
    ) -> Digest:
        """Record a digest: its papers in the ledger and one pending delivery per channel.

        After this commits, the papers are never offered again; they count as delivered
        on a channel only once that channel's delivery is marked done.
        """
        with self.transaction() as conn:
            seq = 1 + (
                conn.execute(
                    select(func.max(digests.c.seq)).where(
                        digests.c.subscriber == subscriber, digests.c.digest_date == digest_date
                    )
                ).scalar()
                or 0
            )
            digest_id = int(
                conn.execute(
                    insert(digests).values(
                        subscriber=subscriber,
                        digest_date=digest_date,
                        seq=seq,
                        candidates=len(selected) + len(considered),
                        run_id=run_id,
                        created_at=now,
                    )
                ).inserted_primary_key[0]
            )
            rows = [
                _ledger_row(subscriber, digest_id, item, "selected", position)
                for position, item in enumerate(selected)
            ] + [
                _ledger_row(subscriber, digest_id, item, "considered", None) for item in considered
            ]
            if rows:
                conn.execute(insert(ledger), rows)
            if selected:
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
        return Digest(
            subscriber=subscriber,
            date=digest_date,
            seq=seq,
            papers=tuple(selected),
            candidates=len(selected) + len(considered),
            digest_id=digest_id,
        )

    def pending_deliveries(self, subscriber: str) -> list[PendingDelivery]:
        """Deliveries of this subscriber's digests that no channel has confirmed yet."""
        rows = self.conn.execute(
            select(
                deliveries.c.digest_id,
                digests.c.digest_date,
                digests.c.seq,
                deliveries.c.channel,
                deliveries.c.attempts,
                deliveries.c.last_error,
            )
            .join(digests, digests.c.id == deliveries.c.digest_id)
            .where(digests.c.subscriber == subscriber, deliveries.c.status != "done")
            .order_by(digests.c.digest_date, digests.c.seq, deliveries.c.channel)
        )
        return [PendingDelivery(*row) for row in rows]

    def load_digest(self, digest_id: int) -> Digest:
        """A recorded digest with its selected papers in digest order."""
        head = self.conn.execute(select(digests).where(digests.c.id == digest_id)).mappings().one()
        rows = self.conn.execute(
            select(
                papers.c.id,
                papers.c.data,
                papers.c.first_seen,
                ledger.c.score,
                ledger.c.matches,
                ledger.c.section,
            )
            .join(ledger, ledger.c.paper_id == papers.c.id)
            .where(ledger.c.digest_id == digest_id, ledger.c.status == "selected")
            .order_by(ledger.c.position)
        )
        return Digest(
            subscriber=head["subscriber"],
            date=head["digest_date"],
            seq=head["seq"],
            papers=tuple(_scored(row) for row in rows),
            candidates=head["candidates"],
            digest_id=digest_id,
        )

    def mark_delivered(self, digest_id: int, channel: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.digest_id == digest_id, deliveries.c.channel == channel)
                .values(
                    status="done",
                    delivered_at=now,
                    attempts=deliveries.c.attempts + 1,
                    last_error=None,
                )
            )

    def mark_failed(self, digest_id: int, channel: str, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.digest_id == digest_id, deliveries.c.channel == channel)
                .values(status="failed", attempts=deliveries.c.attempts + 1, last_error=error)
            )

    def feed_items(
        self, subscriber: str, limit: int, include_digest: int | None = None
    ) -> list[FeedItem]:
        """The latest papers delivered to the subscriber's feed, newest digest first.

        ``include_digest`` adds a digest whose feed delivery is being made right now.
        """
        delivered = or_(deliveries.c.status == "done", digests.c.id == include_digest)
        rows = self.conn.execute(
            select(
                papers.c.id,
                papers.c.data,
                papers.c.first_seen,
                ledger.c.score,
                ledger.c.matches,
                ledger.c.section,
                digests.c.digest_date,
                deliveries.c.delivered_at,
            )
            .join(ledger, ledger.c.paper_id == papers.c.id)
            .join(digests, digests.c.id == ledger.c.digest_id)
            .join(
                deliveries,
                and_(deliveries.c.digest_id == digests.c.id, deliveries.c.channel == "feed"),
            )
            .where(ledger.c.subscriber == subscriber, ledger.c.status == "selected", delivered)
            .order_by(digests.c.digest_date.desc(), digests.c.seq.desc(), ledger.c.position)
            .limit(limit)
        )
        return [FeedItem(_scored(row), row.digest_date, row.delivered_at) for row in rows]

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

    def summary(self) -> StoreSummary:
        conn = self.conn
        result = StoreSummary(
            location=self.location,
            schema_version=self.schema_version,
            papers=conn.execute(select(func.count()).select_from(papers)).scalar() or 0,
            papers_with_arxiv_id=conn.execute(
                select(func.count()).select_from(papers).where(papers.c.arxiv_id.is_not(None))
            ).scalar()
            or 0,
            keys=conn.execute(select(func.count()).select_from(paper_keys)).scalar() or 0,
            runs=self.last_runs(10),
        )
        for name, created_on in conn.execute(select(subscribers).order_by(subscribers.c.name)):
            entry = SubscriberSummary(name=name, created_on=created_on)
            entry.digests, entry.last_digest = conn.execute(
                select(func.count(), func.max(digests.c.digest_date)).where(
                    digests.c.subscriber == name
                )
            ).one()
            counts = dict(
                conn.execute(
                    select(ledger.c.status, func.count())
                    .where(ledger.c.subscriber == name)
                    .group_by(ledger.c.status)
                ).all()
            )
            entry.considered_papers = counts.get("considered", 0)
            entry.delivered_papers = (
                conn.execute(
                    select(func.count())
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
            entry.pending_deliveries = len(self.pending_deliveries(name))
            result.subscribers.append(entry)
        return result


def _stored(row: Any) -> StoredPaper:
    return StoredPaper(row.id, Paper.from_json(json.loads(row.data)), row.first_seen)


def _scored(row: Any) -> Scored:
    matches = tuple(Match(**m) for m in json.loads(row.matches))
    return Scored(_stored(row), row.score, matches, row.section)


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
        "matches": json.dumps(item.explain()),
        "section": item.section,
    }


def _configure_sqlite(engine: Engine) -> None:
    """WAL for readers beside the writer, foreign keys, and real SAVEPOINTs for dry runs."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Deferred: readers (`digest state`) never block; one writer at a time is
        # guaranteed by the run lock, so a deferred transaction cannot deadlock. Schema
        # changes ask for the write lock at once (see Store.__init__).
        immediate = conn.info.pop("begin_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
