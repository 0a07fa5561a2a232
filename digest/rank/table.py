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
from digest.rank.profile import Term

if TYPE_CHECKING:
    from digest.rank.corpus import Corpus
    from digest.rank.score import Weights


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
        self._parts: list[tuple[np.ndarray, ...]] = []  # per term: cols, title, abstract, ...
        self._idf: list[float] = []
        self.ptr = np.zeros(1, dtype=np.int64)
        self.cols = self.keys = np.zeros(0, dtype=np.int64)
        self.title = self.abstract = self.title_count = self.abstract_count = np.zeros(0)
        self.idf = np.zeros(0)
        self._matrices: tuple[sparse.csr_matrix, sparse.csr_matrix] | None = None

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
        """Bring the flat arrays up to date with every registered term."""
        if not self._pending:
            return
        for term in self._pending:
            self._parts.append(self._analyse(term))
            self._idf.append(self.corpus.idf(term))
        self._pending = []
        per_term = list(zip(*self._parts, strict=True))
        sizes = np.array([len(cols) for cols in per_term[0]], dtype=np.int64)
        self.ptr = np.concatenate(([0], np.cumsum(sizes)))
        self.cols, self.title, self.abstract, self.title_count, self.abstract_count = (
            np.concatenate(arrays) for arrays in per_term
        )
        self.idf = np.array(self._idf)
        term_of = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        self.keys = term_of * max(self.n, 1) + self.cols  # ascending: term-major, then column
        self._matrices = None

    def matrices(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(points, presence), term x candidate: BM25F points of each term at weight 1."""
        self.build()
        if self._matrices is None:
            k1 = self.weights.k1
            combined = self.title + self.abstract
            term_of = np.repeat(np.arange(len(self.index)), np.diff(self.ptr))
            points = self.idf[term_of] * combined * (k1 + 1) / (combined + k1)
            shape = (len(self.index), self.n)
            self._matrices = (
                sparse.csr_matrix((points, self.cols, self.ptr), shape=shape),
                sparse.csr_matrix((np.ones(len(self.cols)), self.cols, self.ptr), shape=shape),
            )
        return self._matrices

    def lookup(self, terms: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For pairs (term row, candidate): which occur, and their entry in the arrays."""
        self.build()
        if not len(self.keys):
            return np.zeros(len(terms), dtype=bool), np.zeros(len(terms), dtype=np.int64)
        wanted = terms * max(self.n, 1) + columns
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return self.keys[at] == wanted, at

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
            at[order],
            self.weights.title * title_count / norms["title"][rows],
            self.weights.abstract * abstract_count / norms["abstract"][rows],
            title_count,
            abstract_count,
        )
