"""Papers' vectors for semantic matching, kept so each paper is encoded once per model.

A vector is stored with the model that made it (name and a digest of its weights) and a
digest of the text it was made from: another model's vectors are never read as this
one's, and a paper whose title or abstract changed (a merge, a new version) is encoded
again rather than matched by its old text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select

from digest.models import StoredPaper
from digest.store.base import CHUNK, StoreBase
from digest.store.schema import embeddings


def embedded_text(paper: StoredPaper) -> str:
    """What a paper's vector is made from: its title and abstract."""
    return f"{paper.paper.title}. {paper.paper.abstract}".strip()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class EmbeddingsMixin(StoreBase):
    def embeddings_of(self, papers: Sequence[StoredPaper], model: str) -> dict[int, np.ndarray]:
        """The stored vectors of these papers by this model, for those whose text is the
        one encoded (by paper uid)."""
        wanted = {p.uid: text_hash(embedded_text(p)) for p in papers}
        found: dict[int, np.ndarray] = {}
        uids = list(wanted)
        for start in range(0, len(uids), CHUNK):
            rows = self.conn.execute(
                select(embeddings.c.paper_id, embeddings.c.text_hash, embeddings.c.vector).where(
                    embeddings.c.model == model,
                    embeddings.c.paper_id.in_(uids[start : start + CHUNK]),
                )
            )
            for uid, digest, vector in rows:
                if wanted[uid] == digest:
                    found[uid] = np.frombuffer(vector, dtype="<f4")
        return found

    def store_embeddings(
        self, model: str, vectors: Mapping[int, np.ndarray], hashes: Mapping[int, str]
    ) -> None:
        """Keep these papers' vectors by this model, replacing any made from older text."""
        if not vectors:
            return
        uids = list(vectors)
        with self.transaction() as conn:
            for start in range(0, len(uids), CHUNK):
                chunk = uids[start : start + CHUNK]
                conn.execute(
                    delete(embeddings).where(
                        embeddings.c.model == model, embeddings.c.paper_id.in_(chunk)
                    )
                )
                conn.execute(
                    insert(embeddings),
                    [
                        {
                            "paper_id": uid,
                            "model": model,
                            "dim": int(vectors[uid].shape[0]),
                            "text_hash": hashes[uid],
                            "vector": np.asarray(vectors[uid], dtype="<f4").tobytes(),
                        }
                        for uid in chunk
                    ],
                )

    def embedding_count(self, model: str | None = None) -> int:
        """How many vectors the store keeps (of one model, or of all)."""
        query = select(func.count()).select_from(embeddings)
        if model is not None:
            query = query.where(embeddings.c.model == model)
        return int(self.conn.execute(query).scalar() or 0)
