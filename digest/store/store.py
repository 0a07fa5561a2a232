"""The state store: one class, its parts in modules of their own.

- ``base.py``: the connection, transactions, dry runs, and concurrency per backend;
- ``papers.py``: papers and their identity (keys, merges);
- ``digests.py``: subscribers, what they are owed, digests and their deliveries;
- ``readers.py``: readers managed in the store (not the config), and their imports;
- ``web.py``: readers' link keys, ratings, opt-outs and sign-up rate limits;
- ``serving.py``: when readers were last served (cadences), and bouncing addresses;
- ``embeddings.py``: papers' vectors for semantic matching, one per paper and model;
- ``tastes.py``: the model of each reader's ratings, kept until they change;
- ``runs.py``: runs, per-source cursors and the summary ``digest state`` prints;
- ``schema.py`` and ``migrations.py``: the tables and their versions.

It works on SQLite (a file, the default) and PostgreSQL (``[store] url``), with the same
code: SQLAlchemy Core, no backend-specific SQL outside ``base.py``.
"""

from __future__ import annotations

from digest.store.digests import DigestsMixin
from digest.store.embeddings import EmbeddingsMixin
from digest.store.papers import PapersMixin
from digest.store.readers import ReadersMixin
from digest.store.runs import RunsMixin
from digest.store.serving import ServingMixin
from digest.store.tastes import TastesMixin
from digest.store.web import WebMixin


class Store(
    PapersMixin,
    DigestsMixin,
    ReadersMixin,
    RunsMixin,
    WebMixin,
    ServingMixin,
    EmbeddingsMixin,
    TastesMixin,
):
    """Papers, store-managed readers, ledgers, digests, deliveries, runs and cursors."""
