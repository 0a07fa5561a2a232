"""Papers and their identity: one row per real paper, known by every key it ever had.

A paper's keys are ``arxiv:ID`` (without version), ``doi:DOI`` (for papers without an
arXiv id) and ``title:KEY`` (the normalised title). A listing joins the paper that holds
any of its keys; a title never joins a paper that carries a different arXiv id or DOI.
When one listing reveals that two stored rows are the same paper (a capture stored by
title, an arXiv listing stored by id, then an HF listing with both), the rows are merged
into the older one, keys and ledger entries included, so a paper already offered to a
reader is never offered again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from digest.ids import normalize_title, parse_arxiv_id
from digest.merge import merge_papers
from digest.models import Paper, StoredPaper
from digest.store.base import CHUNK, StoreBase
from digest.store.schema import ledger, paper_keys, papers


def arxiv_key(arxiv_id: str) -> str:
    return f"arxiv:{arxiv_id.lower()}"


def title_key(key: str) -> str:
    return f"title:{key}"


def doi_key(doi: str) -> str:
    return f"doi:{doi.lower()}"


def keys_of(paper: Paper) -> list[str]:
    keys = [arxiv_key(paper.arxiv_id)] if paper.arxiv_id else []
    if paper.doi and not paper.arxiv_id:  # journals and bioRxiv: the DOI names the paper
        keys.append(doi_key(paper.doi))
    if paper.title_key:
        keys.append(title_key(paper.title_key))
    return keys


def different_papers(a: Paper, b: Paper) -> bool:
    """Two listings that share a title but name different papers by arXiv id or DOI."""
    if a.arxiv_id and b.arxiv_id:
        return a.arxiv_id != b.arxiv_id
    if a.arxiv_id or b.arxiv_id:
        return False  # a journal version of an arXiv paper is the same paper
    return bool(a.doi and b.doi and a.doi.lower() != b.doi.lower())


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What storing one batch did: how many papers were new, and every listing's row id."""

    new: int
    uids: list[int]


@dataclass(slots=True)
class _Row:
    paper: Paper
    first_seen: date
    keys: list[str]  # keys to add for this row


class PapersMixin(StoreBase):
    def upsert_papers(self, batch: Sequence[Paper], seen_on: date, now: datetime) -> UpsertResult:
        """Store a batch of listings, merging each with the paper it is.

        Reads every key of the batch in a few queries, resolves identities in memory,
        then writes new papers, new keys and changed papers in bulk.
        """
        with self.transaction() as conn:
            listing_keys = [keys_of(paper) for paper in batch]
            known = self._lookup_keys(conn, {k for keys in listing_keys for k in keys})
            rows: dict[int, _Row] = {
                sp.uid: _Row(sp.paper, sp.first_seen, [])
                for sp in self._load(conn, set(known.values()))
            }
            dirty: set[int] = set()
            fresh: list[int] = []  # temporary (negative) ids of papers to insert, in order
            result: list[int] = []
            for paper, keys in zip(batch, listing_keys, strict=True):
                matches = _matching(paper, keys, known, rows)
                if not matches:
                    uid = -(len(fresh) + 1)
                    free = [key for key in keys if key not in known]
                    rows[uid] = _Row(paper, seen_on, free)
                    known.update(dict.fromkeys(free, uid))
                    fresh.append(uid)
                    result.append(uid)
                    continue
                # The oldest stored row survives; among new rows, the first one.
                stored = sorted(u for u in matches if u > 0)
                survivor = stored[0] if stored else max(matches)
                for other in sorted(matches - {survivor}):
                    rows[survivor].paper = merge_papers(rows[survivor].paper, rows[other].paper)
                    rows[survivor].first_seen = min(
                        rows[survivor].first_seen, rows[other].first_seen
                    )
                    rows[survivor].keys += rows[other].keys
                    if other > 0:
                        self._absorb(conn, survivor, other)
                        self._forget(other)
                        dirty.discard(other)
                    else:
                        fresh.remove(other)
                    known.update({k: survivor for k, v in known.items() if v == other})
                    result = [survivor if u == other else u for u in result]
                    del rows[other]
                    dirty.add(survivor)
                merged = merge_papers(rows[survivor].paper, paper)
                for key in keys:
                    if key not in known:
                        known[key] = survivor
                        rows[survivor].keys.append(key)
                if merged != rows[survivor].paper or rows[survivor].keys:
                    rows[survivor].paper = merged
                    dirty.add(survivor)
                result.append(survivor)
            real = self._insert_new(conn, [rows[uid] for uid in fresh], now)
            ids = dict(zip(fresh, real, strict=True))
            key_rows = [
                {"key": key, "paper_id": ids.get(uid, uid)}
                for uid, row in rows.items()
                if uid < 0 or uid in dirty
                for key in row.keys
            ]
            if key_rows:
                conn.execute(insert(paper_keys), key_rows)
            updates = [uid for uid in dirty if uid > 0]
            if updates:
                conn.execute(
                    update(papers).where(papers.c.id == bindparam("uid")),
                    [
                        {
                            "uid": uid,
                            "data": json.dumps(rows[uid].paper.to_json()),
                            "arxiv_id": rows[uid].paper.arxiv_id,
                            "first_seen": rows[uid].first_seen,
                            "updated_at": now,
                        }
                        for uid in sorted(updates)
                    ],
                )
                for uid in updates:
                    self._forget(uid)
        return UpsertResult(new=len(fresh), uids=[ids.get(u, u) for u in result])

    def _insert_new(self, conn: Connection, new_rows: list[_Row], now: datetime) -> list[int]:
        if not new_rows:
            return []
        values = [
            {
                "arxiv_id": row.paper.arxiv_id,
                "title_key": row.paper.title_key,
                "data": json.dumps(row.paper.to_json()),
                "first_seen": row.first_seen,
                "first_seen_at": now,
                "updated_at": now,
            }
            for row in new_rows
        ]
        statement = insert(papers).returning(papers.c.id, sort_by_parameter_order=True)
        return [int(uid) for uid in conn.execute(statement, values).scalars()]

    @staticmethod
    def _absorb(conn: Connection, survivor: int, other: int) -> None:
        """Fold stored paper ``other`` into ``survivor``: its keys and ledger rows move over."""
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
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            rows = conn.execute(
                select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.key.in_(chunk))
            )
            found.update({key: uid for key, uid in rows})
        return found

    def _load(self, conn: Connection, uids: set[int]) -> list[StoredPaper]:
        loaded = [self._papers[u] for u in uids if u in self._papers]
        missing = sorted(u for u in uids if u not in self._papers)
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            rows = conn.execute(
                select(papers.c.id, papers.c.data, papers.c.first_seen).where(
                    papers.c.id.in_(chunk)
                )
            )
            loaded.extend(self._stored(row.id, row.data, row.first_seen) for row in rows)
        return loaded

    def get_papers(self, uids: Sequence[int]) -> list[StoredPaper]:
        by_id = {sp.uid: sp for sp in self._load(self.conn, set(uids))}
        return [by_id[uid] for uid in uids if uid in by_id]

    def papers_after(self, after: int, until: date, since: date | None = None) -> list[StoredPaper]:
        """Papers with a row id above ``after``, first seen by ``until`` (and from ``since``),
        in row-id order: what readers are owed since their last digest."""
        query = select(papers.c.id, papers.c.data, papers.c.first_seen).where(
            papers.c.first_seen <= until
        )
        if since is not None:
            # By date only, so that the date index is used (not a scan of every id above
            # ``after`` in id order, which is all of them for a new reader); sorted here.
            query = query.where(papers.c.first_seen >= since)
            rows = sorted(self.conn.execute(query), key=lambda row: row.id)
            return [self._stored(r.id, r.data, r.first_seen) for r in rows if r.id > after]
        query = query.where(papers.c.id > after).order_by(papers.c.id)
        return [self._stored(row.id, row.data, row.first_seen) for row in self.conn.execute(query)]

    def recent_papers(self, since: date, limit: int) -> list[StoredPaper]:
        """The newest papers first seen on or after ``since``, at most ``limit``, in id order.

        Ranking uses them as its background: their document frequencies say which words
        are common in the field right now.
        """
        rows = self.conn.execute(  # newest first by the date's index, however ids were given
            select(papers.c.id, papers.c.data, papers.c.first_seen)
            .where(papers.c.first_seen >= since)
            .order_by(papers.c.first_seen.desc(), papers.c.id.desc())
            .limit(limit)
        )
        return sorted((self._stored(r.id, r.data, r.first_seen) for r in rows), key=lambda p: p.uid)

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

    def papers_titled(self, words: str, limit: int) -> list[StoredPaper]:
        """Up to ``limit`` stored papers whose title holds ``words`` (as a title key: case,
        accents and punctuation aside), oldest first: what a reader who remembers part of
        a title means."""
        fragment = normalize_title(words)
        if not fragment:
            return []
        # A title key holds letters, digits and single spaces only: no LIKE wildcard.
        rows = self.conn.execute(
            select(paper_keys.c.paper_id)
            .where(paper_keys.c.key.like(title_key(f"%{fragment}%")))
            .distinct()
            .order_by(paper_keys.c.paper_id)
            .limit(limit)
        )
        return sorted(self._load(self.conn, {r.paper_id for r in rows}), key=lambda p: p.uid)


def _matching(
    paper: Paper, keys: list[str], known: dict[str, int], rows: dict[int, _Row]
) -> set[int]:
    found: set[int] = set()
    for key in keys:
        uid = known.get(key)
        if uid is None:
            continue
        if key.startswith("title:") and different_papers(paper, rows[uid].paper):
            continue  # same title, different paper
        found.add(uid)
    ids = {rows[u].paper.arxiv_id for u in found if rows[u].paper.arxiv_id}
    if len(ids) > 1:  # a title-only listing matching two arXiv papers: take the id's own
        found = {u for u in found if rows[u].paper.arxiv_id == paper.arxiv_id} or {min(found)}
    return found
