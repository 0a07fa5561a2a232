"""The papers a run ranks, analysed once and shared by every subscriber.

Each field (title, abstract) becomes a sparse paper-by-token count matrix, over stems and
over exact words, so a one-word term's counts are one sparse column. A phrase first
narrows to the papers that contain all of its tokens (a sparse intersection) and only
then checks their order, paper by paper. What a term matches is kept sparse (the papers
where it occurs, and how often), and cached by what it matches, so a thousand readers who
follow "linear attention" cost one count, and its BM25F points are computed once.

Document frequencies come from the same corpus, which holds the store's recent papers
besides today's: a word common in the field (``model``, ``learning``) weighs little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from digest.models import StoredPaper
from digest.rank.profile import Term
from digest.rank.text import fold, stem, words

if TYPE_CHECKING:
    from digest.rank.score import Weights

FIELDS = ("title", "abstract")


@dataclass(frozen=True, slots=True)
class TermStats:
    """Where a term occurs: corpus rows (sorted) and its count in each field there."""

    rows: np.ndarray  # int64
    title: np.ndarray  # float64 counts
    abstract: np.ndarray

    def field(self, name: str) -> np.ndarray:
        return self.title if name == "title" else self.abstract

    def counts_at(self, row: int) -> dict[str, int]:
        """The counts in one corpus row (zero where the term does not occur)."""
        i = int(np.searchsorted(self.rows, row))
        if i < len(self.rows) and self.rows[i] == row:
            return {"title": int(self.title[i]), "abstract": int(self.abstract[i])}
        return {"title": 0, "abstract": 0}


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
    """Analysed papers: sparse token counts per field, lengths, document frequencies."""

    def __init__(self, papers: Sequence[StoredPaper]) -> None:
        self.papers = list(papers)
        self.row = {paper.uid: i for i, paper in enumerate(self.papers)}
        self.size = len(self.papers)
        self.fields = {
            "title": _Field([words(p.paper.title) for p in self.papers]),
            "abstract": _Field([words(p.paper.abstract) for p in self.papers]),
        }
        self.average_length = {
            name: float(f.lengths.mean()) if self.size and f.lengths.mean() > 0 else 1.0
            for name, f in self.fields.items()
        }
        self.uids = np.array([p.uid for p in self.papers], dtype=np.int64)
        self.upvotes = np.array([p.paper.upvotes or 0 for p in self.papers], dtype=np.float64)
        self.stars = np.array([p.paper.github_stars or 0 for p in self.papers], dtype=np.float64)
        self._stats: dict[tuple[str, tuple[str, ...], int], TermStats] = {}
        self._points: dict[tuple[object, ...], np.ndarray] = {}
        self._norms: dict[tuple[float, float], dict[str, np.ndarray]] = {}
        self._people: dict[str, set[int]] | None = None
        self._rows: dict[int, tuple[Sequence[StoredPaper], np.ndarray]] = {}
        self._categories: dict[str, set[int]] | None = None

    def __contains__(self, paper: StoredPaper) -> bool:
        return paper.uid in self.row

    def rows_of(self, papers: Sequence[StoredPaper]) -> np.ndarray:
        """Corpus rows of ``papers``; cached per list object, since readers owed the same
        papers are handed the very same list (see store.Pending)."""
        cached = self._rows.get(id(papers))
        if cached is not None and cached[0] is papers:
            return cached[1]
        found = np.fromiter((self.row[p.uid] for p in papers), dtype=np.int64, count=len(papers))
        if len(self._rows) > 256:
            self._rows.clear()
        self._rows[id(papers)] = (papers, found)  # the list is kept, so its id stays its own
        return found

    # --- term statistics ------------------------------------------------------------------

    def stats(self, term: Term) -> TermStats:
        """Where ``term`` occurs, and how often in each field (cached)."""
        key = term.identity
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = self._compute_stats(term)
        return found

    def idf(self, term: Term) -> float:
        """BM25's inverse document frequency of ``term`` over the corpus, always above 0."""
        df = float(len(self.stats(term).rows))
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def points(self, term: Term, weights: Weights) -> np.ndarray:
        """BM25F points of ``term`` (weight 1) at each of ``stats(term).rows`` (cached)."""
        key = (
            term.identity,
            weights.k1,
            weights.b_title,
            weights.b_abstract,
            weights.title,
            weights.abstract,
        )
        found = self._points.get(key)
        if found is None:
            stats = self.stats(term)
            combined = self.combined(stats, stats.rows, weights)
            found = self.idf(term) * combined * (weights.k1 + 1) / (combined + weights.k1)
            self._points[key] = found
        return found

    def combined(self, stats: TermStats, rows: np.ndarray, weights: Weights) -> np.ndarray:
        """BM25F's weighted, length-normalised term frequency, before saturation."""
        norms = self.norms(weights)
        positions = np.searchsorted(stats.rows, rows)
        return sum(weights.field(f) * stats.field(f)[positions] / norms[f][rows] for f in FIELDS)  # type: ignore[return-value]

    def norms(self, weights: Weights) -> dict[str, np.ndarray]:
        key = (weights.b_title, weights.b_abstract)
        if key not in self._norms:
            self._norms[key] = {
                f: 1.0
                - weights.b(f)
                + weights.b(f) * self.fields[f].lengths / self.average_length[f]
                for f in FIELDS
            }
        return self._norms[key]

    def _compute_stats(self, term: Term) -> TermStats:
        per_field = {name: self._field_counts(field, term) for name, field in self.fields.items()}
        rows = np.union1d(per_field["title"][0], per_field["abstract"][0]).astype(np.int64)
        counts = {}
        for name, (found_rows, values) in per_field.items():
            dense = np.zeros(len(rows))
            dense[np.searchsorted(rows, found_rows)] = values
            counts[name] = dense
        return TermStats(rows, counts["title"], counts["abstract"])

    def _field_counts(self, field: _Field, term: Term) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) where the term occurs in one field."""
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
        columns = [self._columns(field, term, position) for position in range(len(term.keys))]
        if any(not cols for cols in columns):
            return empty
        present = [
            self._column(field, term, position, cols) for position, cols in enumerate(columns)
        ]
        if len(term.keys) == 1:
            return present[0]
        # A phrase: only papers holding every token can hold the phrase; check their order.
        candidates = present[0][0]
        for rows, _counts in present[1:]:
            candidates = np.intersect1d(candidates, rows, assume_unique=True)
        counts = np.array(
            [_phrase_count(field, term, int(row)) for row in candidates], dtype=np.float64
        )
        keep = counts > 0
        return candidates[keep], counts[keep]

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
    def _column(
        field: _Field, term: Term, position: int, columns: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        exact = term.mode == "exact" or (term.mode == "prefix" and position == len(term.keys) - 1)
        matrix = field.word_matrix if exact else field.stem_matrix
        if len(columns) == 1:
            column = matrix[:, columns[0]]
            return column.indices.astype(np.int64), column.data.astype(np.float64)
        summed = np.asarray(matrix[:, columns].sum(axis=1)).ravel()
        rows = np.flatnonzero(summed)
        return rows.astype(np.int64), summed[rows]

    # --- who wrote what, where it was filed -----------------------------------------------

    def rows_by_author(self, name: str) -> set[int]:
        """Rows of papers by ``name``: a full name, or a surname alone ("LeCun")."""
        if self._people is None:
            self._people = {}
            for row, paper in enumerate(self.papers):
                for author in paper.paper.authors:
                    folded = " ".join(fold(author).split())
                    self._people.setdefault(folded, set()).add(row)
                    self._people.setdefault("surname:" + folded.rsplit(" ", 1)[-1], set()).add(row)
        key = name if " " in name else "surname:" + name
        return self._people.get(key, set())

    def rows_in_category(self, category: str) -> set[int]:
        if self._categories is None:
            self._categories = {}
            for row, paper in enumerate(self.papers):
                for found in paper.paper.categories:
                    self._categories.setdefault(found.lower(), set()).add(row)
        return self._categories.get(category.lower(), set())


def positions(term: Term, k: int, words_: list[str], stems: list[str]) -> list[int]:
    """Where the term's ``k``-th key occurs in a token list (the comparisons highlighting uses)."""
    key = term.keys[k]
    if term.mode == "exact":
        return [i for i, word in enumerate(words_) if word == key]
    if term.mode == "prefix" and k == len(term.keys) - 1:
        return [i for i, word in enumerate(words_) if word.startswith(key)]
    return [i for i, stemmed in enumerate(stems) if stemmed == key]


def phrase_starts(term: Term, words_: list[str], stems: list[str]) -> list[int]:
    """Token positions where the whole phrase begins."""
    starts = positions(term, 0, words_, stems)
    for k in range(1, len(term.keys)):
        following = set(positions(term, k, words_, stems))
        starts = [s for s in starts if s + k in following]
    return starts


def _phrase_count(field: _Field, term: Term, row: int) -> int:
    words_, stems = field.words[row], field.stems[row]
    if term.window:
        found = [positions(term, k, words_, stems) for k in range(len(term.keys))]
        return _clusters(found, term.window) if all(found) else 0
    return len(phrase_starts(term, words_, stems))


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
