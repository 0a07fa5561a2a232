"""Schema versions. A new store gets the current schema at once; an older one is migrated.

To change the schema: edit ``schema.py`` (what a new store is created with), add a step to
``MIGRATIONS`` that brings the previous version to the new one, and bump nothing else:
``SCHEMA_VERSION`` is the number of the last step.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, inspect, select, text, update

from digest.errors import StoreError
from digest.store.schema import (
    bounces,
    digests,
    embeddings,
    mail_log,
    meta,
    metadata,
    opt_outs,
    ratings,
    reader_keys,
    readers,
    subscribers,
    tastes,
)


def _v2_ledger_sections(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE ledger ADD COLUMN section VARCHAR(64)"))


def _v3_digest_watermarks(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE digests ADD COLUMN watermark INTEGER"))
    conn.execute(
        text(
            "UPDATE digests SET watermark = "
            "(SELECT MAX(paper_id) FROM ledger WHERE ledger.digest_id = digests.id)"
        )
    )


def _v4_digest_watermark_index(conn: Connection) -> None:
    next(i for i in digests.indexes if i.name == "ix_digests_watermark").create(conn)


def _v5_delivery_unknown_sends(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE deliveries ADD COLUMN unknown_sends INTEGER NOT NULL DEFAULT 0"))


def _v6_readers(conn: Connection) -> None:
    readers.create(conn)


def _v7_reader_loop(conn: Connection) -> None:
    kind = subscribers.c.served_at.type.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE subscribers ADD COLUMN served_at {kind}"))
    for table in (reader_keys, ratings, opt_outs, bounces, mail_log):
        table.create(conn)


def _v8_embeddings(conn: Connection) -> None:
    embeddings.create(conn)


def _v9_tastes(conn: Connection) -> None:
    tastes.create(conn)


# Each step takes the store from version N-1 to N. Version 1 is the first schema.
MIGRATIONS: dict[int, tuple[str, Callable[[Connection], None]]] = {
    2: ("ledger.section: the interest a paper was chosen for", _v2_ledger_sections),
    3: ("digests.watermark: papers offered without a ledger row each", _v3_digest_watermarks),
    4: ("ix_digests_watermark: where a subscriber stands, in one seek", _v4_digest_watermark_index),
    5: (
        "deliveries.unknown_sends: copies sent whose outcome is unknown",
        _v5_delivery_unknown_sends,
    ),
    6: ("readers: subscribers managed in the store", _v6_readers),
    7: (
        "reader_keys, ratings, opt_outs, bounces, mail_log, subscribers.served_at: "
        "the reader's loop",
        _v7_reader_loop,
    ),
    8: ("embeddings: papers' vectors for semantic matching", _v8_embeddings),
    9: ("tastes: the model of each reader's ratings, kept until they change", _v9_tastes),
}
SCHEMA_VERSION = max(MIGRATIONS, default=1)


def current_version(conn: Connection) -> int | None:
    """The store's schema version, or None for a store without tables yet."""
    if not inspect(conn).has_table("meta"):
        return None
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else None


def migrate(conn: Connection, location: str) -> int:
    """Bring the schema to SCHEMA_VERSION inside the caller's transaction; return it."""
    version = current_version(conn)
    if version is None:
        metadata.create_all(conn)
        conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{location}: the store has schema version {version}, newer than this "
            f"paper-digest understands ({SCHEMA_VERSION})",
            hint="upgrade paper-digest, or point [store] at another file",
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        _description, apply = MIGRATIONS[step]
        apply(conn)
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=str(step)))
    return SCHEMA_VERSION
