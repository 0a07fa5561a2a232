"""The state store's tables, in SQLAlchemy Core so the same code runs on SQLite and PostgreSQL.

- ``papers``: one row per real paper; ``data`` is the merged Paper as JSON.
- ``paper_keys``: every key a paper is known by (``arxiv:ID``, ``title:KEY``), so a paper
  first seen by title and later by id stays one paper.
- ``subscribers``: when each subscriber first took part in a run.
- ``readers``: subscribers managed in the store rather than the config: address, status,
  profile (JSON, validated as a config subscriber is), channels, schedule, timestamps (v6).
- ``digests``: each digest made for a subscriber (date and sequence within the day).
- ``ledger``: the papers chosen for a subscriber's digests (and, rarely, papers considered
  but not covered by the digest's watermark); ``digests.watermark`` covers the rest.
- ``deliveries``: one row per digest and channel; ``done`` only once the channel confirmed,
  ``unknown`` / ``unconfirmed`` when a copy went out and no confirmation came back.
- ``reader_keys``: each reader's random key, the only thing signed links carry of it (v7).
- ``ratings``: a reader's vote on a paper (+1 more like this, -1 less), last vote wins (v7).
- ``opt_outs``: addresses of config-managed readers who unsubscribed or bounce (v7); a
  store reader's status says the same of it.
- ``bounces``: runs in a row on which the mail server refused an address for good (v7).
- ``mail_log``: sign-up mails sent to an address, and sign-up posts by a client, for
  their rate limits (v7).
- ``subscribers.served_at``: when a run last served the reader, for cadences (v7).
- ``embeddings``: each paper's vector for semantic matching, per model, with a digest of
  the text it was computed from, so a paper whose text changed is encoded again (v8).
- ``tastes``: the model of each reader's ratings, kept until the ratings change, with a
  fingerprint of what it was fitted on (v9).
- ``runs``: one row per run with its report. ``cursors``: per-source state between runs.
- ``meta``: the schema version.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend, read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("arxiv_id", String(64), nullable=True),
    Column("title_key", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("first_seen", Date, nullable=False),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_papers_first_seen", "first_seen"),
)

paper_keys = Table(
    "paper_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Index("ix_paper_keys_paper", "paper_id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_on", Date, nullable=False),
    # When a run last served this reader (made a digest or found none owed), so a daily or
    # weekly reader is served once per period whatever the number of runs (v7).
    Column("served_at", UtcDateTime(), nullable=True),
)

readers = Table(
    "readers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order they came in
    Column("name", String(64), nullable=False),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False),  # the address case-folded: one reader each
    Column("status", String(16), nullable=False),  # pending | active | paused | ...
    Column("profile", Text, nullable=False),  # JSON: SubscriberSettings' profile fields
    Column("channels", Text, nullable=False),  # JSON list
    Column("cadence", String(8), nullable=False),  # daily | weekly
    Column("weekday", String(3), nullable=True),  # mon ... sun, for weekly
    Column("timezone", String(64), nullable=False),
    Column("send_hour", Integer, nullable=False),
    Column("feed_token", String(128), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("confirmed_at", UtcDateTime(), nullable=True),
    Column("unsubscribed_at", UtcDateTime(), nullable=True),
    UniqueConstraint("name", name="uq_readers_name"),
    UniqueConstraint("email_key", name="uq_readers_email"),
    Index("ix_readers_status", "status"),
)

digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber", String(64), nullable=False),
    Column("digest_date", Date, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("candidates", Integer, nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Every paper with a row id up to this one was offered to the subscriber by this
    # digest or an earlier one (v3): "considered" needs no row per paper.
    Column("watermark", Integer, nullable=True),
    UniqueConstraint("subscriber", "digest_date", "seq", name="uq_digests_day_seq"),
    # A subscriber's highest watermark is one index seek however long its history (v4).
    Index("ix_digests_watermark", "subscriber", "watermark"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("subscriber", String(64), primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id"), primary_key=True),
    Column("digest_id", Integer, ForeignKey("digests.id"), nullable=False),
    Column("status", String(16), nullable=False),  # selected | considered
    Column("position", Integer, nullable=True),  # order in the digest, for selected papers
    Column("score", Float, nullable=False),
    Column("matches", Text, nullable=False),  # JSON: a list of Match (as lists)
    Column("section", String(64), nullable=True),  # the interest it was chosen for (v2)
    Index("ix_ledger_digest", "digest_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("digest_id", Integer, ForeignKey("digests.id"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    # pending | done | failed | unknown (sent, never confirmed: sent once more by a later
    # run) | unconfirmed (unknown again after that: not sent again)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    # Copies that reached the server without a confirmation (v5): at most two are sent.
    Column("unknown_sends", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_deliveries_status", "status"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest_date", Date, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("status", String(16), nullable=False),  # running | ok | failed | interrupted
    Column("dry_run", Integer, nullable=False, default=0),
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("report", Text, nullable=True),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

reader_keys = Table(
    "reader_keys",
    metadata,
    Column("subscriber", String(64), primary_key=True),
    Column("key", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("key", name="uq_reader_keys_key"),
)

ratings = Table(
    "ratings",
    metadata,
    Column("subscriber", String(64), primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("vote", Integer, nullable=False),  # +1 more like this, -1 less like this
    Column("source", String(16), nullable=False),  # web | cli | import
    Column("rated_at", UtcDateTime(), nullable=False),
    Index("ix_ratings_rated_at", "subscriber", "rated_at"),
)

opt_outs = Table(
    "opt_outs",
    metadata,
    Column("email_key", Text, primary_key=True),
    Column("reason", String(16), nullable=False),  # unsubscribed | bouncing
    Column("source", String(32), nullable=False),  # one-click | page | cli | smtp
    Column("at", UtcDateTime(), nullable=False),
)

bounces = Table(
    "bounces",
    metadata,
    Column("email_key", Text, primary_key=True),
    Column("runs", Integer, nullable=False),  # runs in a row with a permanent refusal
    Column("last_run_id", Integer, nullable=True),
    Column("first_at", UtcDateTime(), nullable=False),
    Column("last_at", UtcDateTime(), nullable=False),
    Column("last_reply", Text, nullable=False),
)

mail_log = Table(
    "mail_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # mail (to an address) | post (by a client)
    Column("who", String(128), nullable=False),  # the address' key hashed, or the client
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_mail_log_who", "kind", "who", "at"),
)

tastes = Table(
    "tastes",
    metadata,
    Column("subscriber", String(128), primary_key=True),
    Column("fingerprint", String(32), nullable=False),  # the ratings and features fitted on
    Column("ratings", Integer, nullable=False),
    Column("words", Text, nullable=False),  # its words' stems, one per line
    Column("weights", LargeBinary, nullable=False),  # float32, little-endian, one per word
    Column("meaning", LargeBinary, nullable=True),  # float32 per embedding dimension
    Column("fitted_at", UtcDateTime(), nullable=False),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(96), primary_key=True),  # name@weights digest: models never mix
    Column("dim", Integer, nullable=False),
    Column("text_hash", String(16), nullable=False),  # of the title and abstract encoded
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian
)
