"""The papers a run ranks, analysed once and shared by every subscriber.

Each field (title, abstract) becomes a sparse document-by-token count matrix, over stems
and over exact words, so a one-word term's counts for every paper are one column. A
phrase first narrows to the papers that contain all of its tokens (a sparse intersection)
and only then checks their order, paper by paper. Counts are cached by what a term
matches, so a thousand readers who follow "linear attention" cost one count.

Document frequencies come from the same corpus, which holds the store's recent papers
besides today's: a word common in the field (``model``, ``learning``) weighs little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from digest.models import StoredPaper
from digest.rank.profile import Term
from digest.rank.text import stem, words

FIELDS = ("title", "abstract")


@dataclass(frozen=True, slots=True)
class Counts:
    """How often a term occurs in each field of each paper (rows in corpus order)."""

    by_field: dict[str, np.ndarray]

    @property
    def anywhere(self) -> np.ndarray:
        return sum(self.by_field.values())  # type: ignore[return-value]


class _Field:
    def __init__(self, documents: list[list[str]]) -> None:
        self.words = documents
        self.stems = [[stem(w) for w in document] for document in documents]
        self.lengths = np.array([len(d) for d in documents], dtype=np.float64)
        self.word_index, self.word_matrix = _matrix(self.words)
        self.stem_index, self.stem_matrix = _matrix(self.stems)


def _matrix(documents: list[list[str]]) -> tuple[dict[str, int], sparse.csc_matrix]:
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, document in enumerate(documents):
        for token in document:
            rows.append(row)
            cols.append(index.setdefault(token, len(index)))
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sparse.csc_matrix((data, (rows, cols)), shape=(len(documents), max(len(index), 1)))
    matrix.sum_duplicates()
    return index, matrix


class Corpus:
    """Analysed papers: token counts per field, lengths, document frequencies."""

    def __init__(self, papers: Sequence[StoredPaper]) -> None:
        self.papers = list(papers)
        self.row = {paper.uid: i for i, paper in enumerate(self.papers)}
        self.fields = {
            "title": _Field([words(p.paper.title) for p in self.papers]),
            "abstract": _Field([words(p.paper.abstract) for p in self.papers]),
        }
        self.size = len(self.papers)
        self.average_length = {
            name: float(f.lengths.mean()) if self.size and f.lengths.mean() > 0 else 1.0
            for name, f in self.fields.items()
        }
        self._counts: dict[tuple[str, tuple[str, ...]], Counts] = {}

    def __contains__(self, paper: StoredPaper) -> bool:
        return paper.uid in self.row

    def counts(self, term: Term) -> Counts:
        """Occurrences of ``term`` in every paper and field (cached)."""
        key = term.identity
        if key not in self._counts:
            self._counts[key] = Counts(
                {name: self._field_counts(f, term) for name, f in self.fields.items()}
            )
        return self._counts[key]

    def idf(self, term: Term) -> float:
        """BM25's inverse document frequency of ``term`` over the corpus, always above 0."""
        df = float(np.count_nonzero(self.counts(term).anywhere))
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def _field_counts(self, field: _Field, term: Term) -> np.ndarray:
        columns = [self._columns(field, term, position) for position in range(len(term.keys))]
        if any(not cols for cols in columns):
            return np.zeros(self.size)
        present = [
            self._column_sum(field, term, position, cols) for position, cols in enumerate(columns)
        ]
        if len(term.keys) == 1:
            return present[0]
        # A phrase: only papers holding every token can hold the phrase; check their order.
        candidates = np.flatnonzero(np.all(np.vstack(present) > 0, axis=0))
        result = np.zeros(self.size)
        for row in candidates:
            result[row] = _phrase_count(field, term, int(row))
        return result

    @staticmethod
    def _columns(field: _Field, term: Term, position: int) -> list[int]:
        key = term.keys[position]
        last = position == len(term.keys) - 1
        if term.mode == "exact":
            column = field.word_index.get(key)
            return [column] if column is not None else []
        if term.mode == "prefix" and last:
            return [c for word, c in field.word_index.items() if word.startswith(key)]
        column = field.stem_index.get(key)
        return [column] if column is not None else []

    @staticmethod
    def _column_sum(field: _Field, term: Term, position: int, columns: list[int]) -> np.ndarray:
        exact = term.mode == "exact" or (term.mode == "prefix" and position == len(term.keys) - 1)
        matrix = field.word_matrix if exact else field.stem_matrix
        return np.asarray(matrix[:, columns].sum(axis=1)).ravel()


def _phrase_count(field: _Field, term: Term, row: int) -> int:
    words_, stems = field.words[row], field.stems[row]
    keys = term.keys
    n = len(keys)
    if term.window:
        return _window_count(words_, stems, term)
    count = 0
    for start in range(len(words_) - n + 1):
        if all(token_matches(term, i, words_[start + i], stems[start + i]) for i in range(n)):
            count += 1
    return count


def _window_count(words_: list[str], stems: list[str], term: Term) -> int:
    """How many separate stretches of ``term.window`` tokens hold every word of the term."""
    positions = [
        [
            i
            for i, (w, s) in enumerate(zip(words_, stems, strict=True))
            if token_matches(term, k, w, s)
        ]
        for k in range(len(term.keys))
    ]
    if any(not found for found in positions):
        return 0
    return _clusters(positions, term.window)


def _clusters(positions: list[list[int]], window: int) -> int:
    """Non-overlapping windows of ``window`` tokens that contain one of each word."""
    events = sorted((p, k) for k, found in enumerate(positions) for p in found)
    count, start = 0, 0
    while start < len(events):
        first = events[start][0]
        seen = {k for p, k in events[start:] if p < first + window}
        if len(seen) == len(positions):
            count += 1
            start = next((i for i, (p, _) in enumerate(events) if p >= first + window), len(events))
        else:
            start += 1
    return count


def token_matches(term: Term, position: int, word: str, stemmed: str) -> bool:
    """Whether one token matches the term's ``position``-th key: shared with highlighting."""
    key = term.keys[position]
    if term.mode == "exact":
        return word == key
    if term.mode == "prefix" and position == len(term.keys) - 1:
        return word.startswith(key)
    return stemmed == key
