"""The terms of many profiles over one list of candidates, as flat arrays and matrices.

Every term any profile uses (a keyword, a phrase's words, an exclusion) is one row; its
entries are the candidates it occurs in, in ascending order, each with the BM25F evidence
of its title and abstract. As matrices (term x candidate) they let a whole batch of
profiles be scored with one sparse product; as flat, sorted arrays they let the points of
any (term, candidate) pairs be looked up at once when matches are explained.

A table is built per run and candidate list and grows as new terms come in: terms shared
by many readers are analysed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from digest.models import StoredPaper
from digest.rank.keywords import Keywords, ranges
from digest.rank.profile import Term

if TYPE_CHECKING:
    from digest.rank.corpus import Corpus
    from digest.rank.score import Weights


GRID_CELLS = 20_000_000  # dense lookups up to 80 MB at a time


class TermTable:
    """Where each registered term occurs among ``candidates``, with its evidence there."""

    def __init__(self, corpus: Corpus, candidates: Sequence[StoredPaper], weights: Weights):
        self.corpus = corpus
        self.weights = weights
        self.candidates = candidates
        self.rows = corpus.rows_of(candidates)  # corpus row of each candidate
        self.n = len(self.rows)
        self.position = np.full(corpus.size, -1, dtype=np.int64)
        self.position[self.rows] = np.arange(self.n)
        self.index: dict[tuple[str, tuple[str, ...], int], int] = {}
        self._pending: list[Term] = []
        self._idf: list[float] = []
        self.ptr = np.zeros(1, dtype=np.int64)
        self.cols = np.zeros(0, dtype=np.int32)  # candidates: indices as scipy keeps them
        self.keys = np.zeros(0, dtype=np.int64)
        self.title = self.abstract = self.title_count = self.abstract_count = np.zeros(0)
        self.points = np.zeros(0)  # BM25F points of each entry, at weight 1
        self.idf = np.zeros(0)
        self._matrix: sparse.csr_matrix | None = None
        self.keywords = Keywords(self.add, weights)  # the readers' keywords, over these rows

    def __len__(self) -> int:
        return len(self.index)

    def add(self, term: Term) -> int:
        """The row of ``term`` (registered on first use)."""
        found = self.index.get(term.identity)
        if found is None:
            found = self.index[term.identity] = len(self.index)
            self._pending.append(term)
        return found

    def columns(self, term: Term) -> np.ndarray:
        """The candidates ``term`` occurs in."""
        t = self.add(term)
        self.build()
        return self.cols[self.ptr[t] : self.ptr[t + 1]]

    def any_of(self, terms: Sequence[Term]) -> np.ndarray:
        """A mask over candidates: those holding any of ``terms``."""
        hit = np.zeros(self.n, dtype=bool)
        for term in terms:
            hit[self.columns(term)] = True
        return hit

    def build(self) -> None:
        """Bring the flat arrays up to date with the terms registered since the last build
        (appended: the terms already there are not analysed or copied again)."""
        if not self._pending:
            return
        new = [self._analyse(term) for term in self._pending]
        self._idf += [self.corpus.idf(term) for term in self._pending]
        self._pending = []
        sizes = np.array([len(parts[0]) for parts in new], dtype=np.int64)
        first = len(self.ptr) - 1
        self.ptr = np.concatenate((self.ptr, self.ptr[-1] + np.cumsum(sizes)))
        added = [np.concatenate(arrays) for arrays in zip(*new, strict=True)]
        current = (self.cols, self.title, self.abstract, self.title_count, self.abstract_count)
        self.cols, self.title, self.abstract, self.title_count, self.abstract_count = (
            np.concatenate((old, more)) for old, more in zip(current, added, strict=True)
        )
        self.idf = np.array(self._idf)
        term_of = np.repeat(np.arange(first, first + len(sizes), dtype=np.int64), sizes)
        combined = added[1] + added[2]
        k1 = self.weights.k1
        points = self.idf[term_of] * combined * (k1 + 1) / (combined + k1)
        self.points = np.concatenate((self.points, points))
        # Ascending: term-major, then column.
        self.keys = np.concatenate((self.keys, term_of * max(self.n, 1) + added[0]))
        self._matrix = None

    def matrix(self) -> sparse.csr_matrix:
        """Term x candidate: the BM25F points of each term at weight 1, above zero
        wherever the term occurs (IDF always is), so it also says where terms occur."""
        self.build()
        if self._matrix is None:
            shape = (len(self.index), self.n)
            small = len(self.cols) < 2**31  # scipy's own index type: no copy to make
            ptr = self.ptr.astype(np.int32) if small else self.ptr
            cols = self.cols if small else self.cols.astype(np.int64)
            self._matrix = sparse.csr_matrix((self.points, cols, ptr), shape=shape)
        return self._matrix

    def lookup(
        self, terms: np.ndarray, columns: np.ndarray, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """For pairs (term row, candidate): which occur, and their entry in the arrays.

        ``among``: the distinct terms of ``terms``, when the caller knows them. If their
        rows over all candidates are small enough to lay out densely, each pair is then
        found by plain indexing instead of a binary search over every entry.
        """
        self.build()
        if not len(self.keys):
            return np.zeros(len(terms), dtype=bool), np.zeros(len(terms), dtype=np.int64)
        if among is not None and len(among) * self.n <= GRID_CELLS:
            slot = np.zeros(len(self.index), dtype=np.int64)
            slot[among] = np.arange(len(among))
            entry = self._grid(among)[slot[terms], columns]
            return entry >= 0, np.maximum(entry, 0)
        wanted = terms * max(self.n, 1) + columns
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return self.keys[at] == wanted, at

    def _grid(self, terms: np.ndarray) -> np.ndarray:
        """len(terms) x candidates: each pair's entry in the arrays, -1 where it has none."""
        grid = np.full(
            (len(terms), self.n), -1, dtype=np.int32 if len(self.cols) < 2**31 else np.int64
        )
        sizes = self.ptr[terms + 1] - self.ptr[terms]
        entry = ranges(self.ptr[terms], sizes)
        grid[np.repeat(np.arange(len(terms)), sizes), self.cols[entry]] = entry
        return grid

    def _analyse(self, term: Term) -> tuple[np.ndarray, ...]:
        """The term's candidates (ascending) and its weighted, length-normalised frequency
        in each field there (BM25F's per-field parts, before saturation), and raw counts."""
        stats = self.corpus.stats(term)
        at = self.position[stats.rows]
        keep = np.flatnonzero(at >= 0)
        order = keep[np.argsort(at[keep], kind="stable")]
        rows = stats.rows[order]
        norms = self.corpus.norms(self.weights)
        title_count, abstract_count = stats.title[order], stats.abstract[order]
        return (
            at[order].astype(np.int32),
            self.weights.title * title_count / norms["title"][rows],
            self.weights.abstract * abstract_count / norms["abstract"][rows],
            title_count,
            abstract_count,
        )
