"""What the reader pages keep: each reader's link key, ratings, opt-outs and the sign-up
mail log that rate limits are counted on.

A reader's *key* is random and stands for the reader in signed links (``digest.tokens``),
so a link never carries the address or the name. Keys are made on first need, for config
and store readers alike, and stay: links in old emails keep working. Removing a store
reader removes its key, so its links then open nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from digest.store.base import CHUNK, StoreBase
from digest.store.schema import mail_log, opt_outs, papers, ratings, reader_keys, readers

Vote = Literal[1, -1]
KEY_BYTES = 12  # 96 random bits, 16 characters


@dataclass(frozen=True, slots=True)
class Rating:
    paper_id: int
    vote: int  # +1 more like this, -1 less like this
    source: str
    rated_at: datetime
    title: str
    arxiv_id: str | None


def hashed(value: str) -> str:
    """What the mail log keeps of an address: not the address itself."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


class WebMixin(StoreBase):
    # --- link keys --------------------------------------------------------------------------

    def reader_keys_of(self, names: Sequence[str], now: datetime) -> dict[str, str]:
        """Each reader's key, made for those who have none yet (in one transaction)."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            rows = self.conn.execute(
                select(reader_keys.c.subscriber, reader_keys.c.key).where(
                    reader_keys.c.subscriber.in_(chunk)
                )
            )
            found.update({name: key for name, key in rows})
        missing = [name for name in unique if name not in found]
        if missing:
            made = {name: secrets.token_urlsafe(KEY_BYTES) for name in missing}
            try:
                with self.transaction() as conn:
                    conn.execute(
                        insert(reader_keys),
                        [{"subscriber": n, "key": k, "created_at": now} for n, k in made.items()],
                    )
                found.update(made)
            except IntegrityError:  # another process made some meanwhile: read them
                return self.reader_keys_of(names, now)
        return found

    def reader_key(self, name: str, now: datetime) -> str:
        return self.reader_keys_of([name], now)[name]

    def reader_of_key(self, key: str) -> str | None:
        """The name of the reader with this key, or None."""
        return self.conn.execute(
            select(reader_keys.c.subscriber).where(reader_keys.c.key == key)
        ).scalar()

    def forget_reader_key(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(reader_keys).where(reader_keys.c.subscriber == name))

    # --- ratings ----------------------------------------------------------------------------

    def rate(
        self, subscriber: str, paper_id: int, vote: Vote | None, source: str, now: datetime
    ) -> None:
        """Record a vote (the last one wins), or clear it with ``vote`` None."""
        with self.transaction() as conn:
            conn.execute(
                delete(ratings).where(
                    ratings.c.subscriber == subscriber, ratings.c.paper_id == paper_id
                )
            )
            if vote is not None:
                conn.execute(
                    insert(ratings).values(
                        subscriber=subscriber,
                        paper_id=paper_id,
                        vote=vote,
                        source=source,
                        rated_at=now,
                    )
                )

    def ratings_of(self, subscriber: str) -> list[Rating]:
        """A reader's ratings, newest first, with each paper's title and arXiv id."""
        rows = self.conn.execute(
            select(
                ratings.c.paper_id,
                ratings.c.vote,
                ratings.c.source,
                ratings.c.rated_at,
                papers.c.data,
                papers.c.arxiv_id,
            )
            .join(papers, papers.c.id == ratings.c.paper_id)
            .where(ratings.c.subscriber == subscriber)
            .order_by(ratings.c.rated_at.desc(), ratings.c.paper_id.desc())
        ).all()
        return [
            Rating(r.paper_id, r.vote, r.source, r.rated_at, _title_of(r.data), r.arxiv_id)
            for r in rows
        ]

    def votes_of(self, names: Sequence[str]) -> dict[str, dict[int, int]]:
        """Every vote of these readers: reader -> paper id -> +1 or -1."""
        found: dict[str, dict[int, int]] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), CHUNK):
            rows = self.conn.execute(
                select(ratings.c.subscriber, ratings.c.paper_id, ratings.c.vote).where(
                    ratings.c.subscriber.in_(unique[start : start + CHUNK])
                )
            )
            for subscriber, paper_id, vote in rows:
                found.setdefault(subscriber, {})[paper_id] = vote
        return found

    # --- opt-outs (config readers; a store reader's status says it) ---------------------------

    def opt_out(self, email_key: str, reason: str, source: str, now: datetime) -> None:
        with self.transaction() as conn:
            changed = conn.execute(
                update(opt_outs)
                .where(opt_outs.c.email_key == email_key)
                .values(reason=reason, source=source, at=now)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(opt_outs).values(
                        email_key=email_key, reason=reason, source=source, at=now
                    )
                )

    def opt_back_in(self, email_key: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(opt_outs).where(opt_outs.c.email_key == email_key))

    def opted_out(self) -> dict[str, str]:
        """Every opted-out address key and its reason."""
        rows = self.conn.execute(select(opt_outs.c.email_key, opt_outs.c.reason))
        return {key: reason for key, reason in rows}  # dict(rows) would index the Result

    # --- rate limits --------------------------------------------------------------------------

    def log_event(self, kind: str, who: str, now: datetime) -> None:
        """Note a sign-up mail sent (``kind`` "mail", ``who`` hashed address) or a post by
        a client (``kind`` "post")."""
        with self.transaction() as conn:
            conn.execute(insert(mail_log).values(kind=kind, who=who, at=now))

    def events_since(self, kind: str, who: str, since: datetime) -> list[datetime]:
        """When ``who`` had events of ``kind`` since ``since``, oldest first."""
        rows = self.conn.execute(
            select(mail_log.c.at)
            .where(mail_log.c.kind == kind, mail_log.c.who == who, mail_log.c.at >= since)
            .order_by(mail_log.c.at)
        )
        return list(rows.scalars())

    def claim_event(
        self,
        kind: str,
        who: str,
        now: datetime,
        *,
        limit: int,
        per: timedelta,
        gap: timedelta = timedelta(0),
    ) -> bool:
        """Log an event of ``kind`` for ``who`` and say True, unless ``who`` had ``limit``
        of them in the last ``per``, or one within ``gap``: then log nothing and say False.
        Counted and logged in one transaction (on PostgreSQL under a lock on ``who``), so
        requests arriving together cannot all pass a limit that only one should."""
        with self.transaction() as conn:
            if self.postgres:
                lock = int.from_bytes(hashlib.sha256(f"{kind} {who}".encode()).digest()[:7])
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            times = list(
                conn.execute(
                    select(mail_log.c.at)
                    .where(mail_log.c.kind == kind, mail_log.c.who == who)
                    .where(mail_log.c.at > now - per)
                    .order_by(mail_log.c.at)
                ).scalars()
            )
            if len(times) >= limit or (gap and times and times[-1] > now - gap):
                return False
            conn.execute(insert(mail_log).values(kind=kind, who=who, at=now))
            return True

    def prune_events(self, before: datetime) -> int:
        """Forget events older than ``before`` (the limits look back a day at most)."""
        with self.transaction() as conn:
            return conn.execute(delete(mail_log).where(mail_log.c.at < before)).rowcount

    def count_events(self) -> int:
        return self.conn.execute(select(func.count()).select_from(mail_log)).scalar() or 0

    # --- feed tokens ----------------------------------------------------------------------

    def reader_feed_tokens(self) -> dict[str, tuple[str | None, str]]:
        """Every store reader's name -> (feed token or None, status): what `digest serve`
        checks a feed's token against, and what the redactor keeps out of logs. One light
        query, without validating every reader."""
        rows = self.conn.execute(select(readers.c.name, readers.c.feed_token, readers.c.status))
        return {name: (token, status) for name, token, status in rows}


def _title_of(data: str) -> str:
    return str(json.loads(data).get("title", ""))
