"""Semantic matching inside a run: the bridge between the config, the store, the encoder
and the pure blend of ``digest.rank.semantic``.

Each paper is encoded once per model: vectors are read from the store, and only papers
without one (or whose text changed) are encoded, then stored, before ranking. A reader's
queries are its interests' descriptions (else their keywords joined), encoded once per
run. Off unless the config has a ``[semantic]`` table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy.exc import IntegrityError

from digest.config import Config, SemanticSettings, SubscriberSettings
from digest.embed import Encoder, resolve_model
from digest.models import StoredPaper
from digest.rank import Corpus, Profile, Ranking
from digest.rank.score import DEFAULT_WEIGHTS
from digest.rank.semantic import Meaning, blend, blocked_by
from digest.store import Store
from digest.store.embeddings import embedded_text, text_hash

log = logging.getLogger("digest")

_ENCODERS: dict[tuple[Path, int], Encoder] = {}  # loaded once per process, across runs
LISTS_KEPT = 64  # candidate lists whose stacked vectors are kept (readers share a few)


def semantic_of(config: Config) -> Semantic | None:
    """The run's semantic matching, or None when the config does not turn it on."""
    if config.semantic is None:
        return None
    return Semantic(config.semantic, config.folder)


def _term_text(keyword: object) -> str:
    return str(getattr(keyword, "term", keyword))


def queries_of(subscriber: SubscriberSettings, profile: Profile) -> list[str]:
    """One query per interest of the profile: its description, else its keywords joined
    (the reader's own description for the interest of its top-level keywords)."""
    by_name = {i.name: i for i in subscriber.interests}
    texts = []
    for interest in profile.interests:
        settings = by_name.get(interest.name) if interest.name is not None else None
        if settings is not None:
            text = settings.description or ", ".join(_term_text(k) for k in settings.keywords)
        else:
            words = ", ".join(_term_text(k) for k in subscriber.keywords)
            text = subscriber.description or words
        texts.append(text)
    return texts


class Semantic:
    """Vectors of papers and queries by one model, and the blend of a reader's ranking."""

    def __init__(self, settings: SemanticSettings, base: Path) -> None:
        self.settings = settings
        self.folder, self.label = resolve_model(settings.model, base)
        self._vectors: dict[int, tuple[str, np.ndarray]] = {}  # uid: (text hash, vector)
        self._queries: dict[str, np.ndarray] = {}
        # Stacked vectors of candidate lists readers share, by the list's id (the list is
        # held too, so an id is never mistaken for a new list's).
        self._lists: dict[int, tuple[Sequence[StoredPaper], np.ndarray]] = {}
        self.encoded = 0  # papers this process encoded (the rest came from the store)

    @property
    def encoder(self) -> Encoder:
        key = (self.folder, self.settings.batch_size)
        found = _ENCODERS.get(key)
        if found is None:
            found = _ENCODERS[key] = Encoder(self.folder, self.label, self.settings.batch_size)
        return found

    def vectors(self, store: Store, papers: Sequence[StoredPaper]) -> np.ndarray:
        """Unit vectors of ``papers`` (rows, in order): from memory, the store, or encoded
        now and stored."""
        hashes = {p.uid: text_hash(embedded_text(p)) for p in papers}
        missing = [p for p in papers if self._vectors.get(p.uid, ("",))[0] != hashes[p.uid]]
        if missing:
            model = self.encoder.name
            stored = store.embeddings_of(missing, model)
            self._vectors.update((uid, (hashes[uid], v)) for uid, v in stored.items())
            todo = list({p.uid: p for p in missing if p.uid not in stored}.values())
            if todo:
                made = self.encoder.encode([embedded_text(p) for p in todo])
                fresh = {p.uid: made[k] for k, p in enumerate(todo)}
                self._store(store, model, fresh, hashes)
                self._vectors.update((uid, (hashes[uid], v)) for uid, v in fresh.items())
                self.encoded += len(todo)
                log.info("semantic: encoded %d papers with %s", len(todo), model)
        if not papers:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[p.uid][1] for p in papers])

    def candidate_vectors(self, store: Store, candidates: Sequence[StoredPaper]) -> np.ndarray:
        """``vectors`` of a candidate list, stacked once for every reader owed that list:
        each reader's blend keeps the one read-only array for its explanations, not a
        copy of its own (a copy each made a thousand readers of 2,000 papers hold 3 GB)."""
        found = self._lists.get(id(candidates))
        if found is None or found[0] is not candidates:
            if len(self._lists) >= LISTS_KEPT:
                self._lists.clear()
            stacked = self.vectors(store, candidates)
            stacked.flags.writeable = False
            found = self._lists[id(candidates)] = (candidates, stacked)
        return found[1]

    @staticmethod
    def _store(
        store: Store, model: str, fresh: dict[int, np.ndarray], hashes: dict[int, str]
    ) -> None:
        try:
            store.store_embeddings(model, fresh, hashes)
        except IntegrityError:  # another run on a shared store stored them meanwhile
            log.info("semantic: vectors stored by another run meanwhile; kept theirs")

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the queries (zeros for an empty one), each encoded once."""
        todo = [t for t in dict.fromkeys(texts) if t and t not in self._queries]
        if todo:
            self._queries.update(zip(todo, self.encoder.encode(todo), strict=True))
        zero = np.zeros(self.encoder.dim, dtype=np.float32)
        return np.stack([self._queries.get(t, zero) for t in texts])

    def blend(
        self,
        store: Store,
        corpus: Corpus,
        subscriber: SubscriberSettings,
        profile: Profile,
        ranking: Ranking,
    ) -> Ranking:
        """The reader's ranking with closeness in meaning blended in (see rank.semantic)."""
        candidates = ranking.candidates
        if not candidates:
            return ranking
        texts = queries_of(subscriber, profile)
        table = corpus.table(candidates, DEFAULT_WEIGHTS)
        meaning = Meaning(
            self.queries(texts),
            tuple(texts),
            self.candidate_vectors(store, candidates),
            blocked_by(profile, table),
            self.settings.weight,
        )
        return blend(ranking, profile, meaning)
