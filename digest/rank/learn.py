"""What a reader's ratings teach: a per-reader logistic model over TF-IDF vectors.

The papers a reader rated up are positives, those rated down negatives, and the latest
papers of the corpus that are neither today's candidates nor rated are weak negatives
(a reader who rates what the digest shows has passed over most of what came before), as
arxiv-sanity-lite trains a linear model on tf-idf with every other paper as a negative.

Its score of each candidate is standardised over the candidates and weighs, in keyword
points, ``weight`` times the mean score of the reader's best candidates: so it means the
same on every profile's scale. It grows with the number of ratings, to full at
``FULL_AT``: a model of ten ratings is mostly noise, and on the simulated reader of
benchmarks/relevance a full weight from the first day cost more than it gained until
about three days of ratings had come in. It orders papers only; it never makes a paper
eligible or keeps one out.

It is fitted when the reader's ratings change, and kept (``Taste``, in the store) until
they change again: a fit is half of what ranking a rated reader costs. A model keeps its
``KEPT_WORDS`` strongest words' weights by stem, not by column, so it applies to any
day's TF-IDF vectors, whose columns change with the corpus (a word the day's corpus
lacks counts for nothing); with embeddings, their dimensions' weights too. The run that
fits a model ranks with what is kept, so the next run, ``digest explain`` and the run
agree.

With semantic matching on (``[semantic]``), each paper's features are its TF-IDF vector
and, beside it, its sentence embedding times ``MEANING`` (``with_meaning``): papers
that say the same in other words then count as alike. On the simulated reader of
benchmarks/relevance this lifted the gain of rating the top 10 over 13 days from
+0.031 to +0.050 NDCG@10 (see its README for how ``MEANING`` was chosen).

Pure: vectors in, points out. The vectors are those of ``rank.similar``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FULL_AT = 30  # ratings at which the model weighs its full weight
BACKGROUND = 300  # the latest corpus papers taken as weak negatives
WEAK = 0.1  # a weak negative's sample weight (a rating's is 1)
MEANING = 0.5  # the length of a paper's embedding beside its unit TF-IDF vector
C = 1.0  # the logistic regression's inverse regularisation
KEPT_WORDS = 1000  # the words a kept model weighs (by |weight|): 12 KB a reader


@dataclass(frozen=True, slots=True, eq=False)
class Taste:
    """A reader's fitted model, as kept between runs: what it was fitted on (a
    ``fingerprint`` of the ratings and the features), how many ratings, its words' weights
    by stem and, with embeddings, the weight of each of their dimensions."""

    fingerprint: str
    ratings: int
    words: tuple[str, ...]
    weights: np.ndarray  # float32, one per word
    meaning: np.ndarray | None = None  # float32, one per embedding dimension

    def coefficients(self, column: Mapping[str, int], width: int, dims: int) -> np.ndarray:
        """The model as one weight per feature of a day's vectors: ``width`` TF-IDF
        columns (``column``: stem to column) and then ``dims`` embedding dimensions."""
        found = np.zeros(width + dims)
        for word, weight in zip(self.words, self.weights, strict=True):
            at = column.get(word)
            if at is not None:
                found[at] = weight
        if dims and self.meaning is not None and len(self.meaning) == dims:
            found[width:] = self.meaning
        return found


def fingerprint(up: Iterable[int], down: Iterable[int], features: str) -> str:
    """What a model is fitted on: the papers rated up and down, the kind of features, and
    the constants that shape the fit. A model is fitted again when it changes."""
    key = f"{sorted(up)}|{sorted(down)}|{features}|{C}|{WEAK}|{BACKGROUND}|{MEANING}|{KEPT_WORDS}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def with_meaning(vectors: Any, meanings: np.ndarray) -> Any:
    """TF-IDF rows with the papers' unit embeddings (rows, in the same order) beside
    them, scaled by ``MEANING``: the features of a model with semantic matching on."""
    from scipy import sparse

    return sparse.hstack([vectors, sparse.csr_matrix(MEANING * meanings)]).tocsr()


def fit(
    up: Any,
    down: Any,
    background: Any,
    words: Sequence[str],
    identity: str,
) -> Taste | None:
    """A logistic model of the ratings, kept as its ``KEPT_WORDS`` strongest words (of
    ``words``: the stem of each TF-IDF column) and every embedding dimension beyond them;
    None when there is nothing to learn from (no paper rated up, or nothing to tell it
    from). ``up``, ``down`` and ``background`` are sparse row vectors (one row per
    paper); ``identity`` is the ratings' ``fingerprint``."""
    if up.shape[0] == 0 or down.shape[0] + background.shape[0] == 0:
        return None
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression  # only readers with ratings

    ratings = up.shape[0] + down.shape[0]
    features = sparse.vstack([up, down, background]).tocsr()
    labels = np.r_[np.ones(up.shape[0]), np.zeros(down.shape[0] + background.shape[0])]
    samples = np.r_[np.ones(ratings), np.full(background.shape[0], WEAK)]
    # newton-cg: the same optimum as the default lbfgs, in half the time on a few hundred rows
    model = LogisticRegression(class_weight="balanced", C=C, max_iter=2000, solver="newton-cg")
    model.fit(features, labels, sample_weight=samples)
    coef = model.coef_.ravel()
    width = len(words)
    lexical = coef[:width]
    strongest = np.flatnonzero(lexical)
    if len(strongest) > KEPT_WORDS:
        strongest = strongest[np.argsort(-np.abs(lexical[strongest]), kind="stable")]
        strongest = np.sort(strongest[:KEPT_WORDS])
    return Taste(
        identity,
        ratings,
        tuple(words[c] for c in strongest),
        lexical[strongest].astype(np.float32),
        coef[width:].astype(np.float32) if len(coef) > width else None,
    )


def taste_points(
    coefficients: np.ndarray, candidates: Any, ratings: int, scale: float, weight: float
) -> np.ndarray | None:
    """Points for each candidate from a model's ``coefficients`` (see
    ``Taste.coefficients``): its score standardised over the candidates, times ``weight``
    of ``scale`` (the points of the reader's best candidates), growing with the ratings
    to full at ``FULL_AT``; None when it tells the candidates nothing apart."""
    if weight <= 0:
        return None
    found = np.asarray(candidates @ coefficients).ravel()
    spread = float(found.std())
    if len(found) < 2 or spread <= 1e-12:
        return None
    share = min(1.0, ratings / FULL_AT)
    return weight * share * scale * (found - found.mean()) / spread
