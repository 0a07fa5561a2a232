"""Similarity between papers: TF-IDF cosine over stems, fitted on the corpus.

It measures a candidate against the papers a reader liked or rated, and against the
other candidates (``neighbours``: each candidate's closest, whose keyword scores it
shares in; see rank.score's score regularisation).

scikit-learn's vectoriser does the weighting and normalisation; our own analyser (the
same stems the keyword scoring uses) does the tokens, so "quantized" in a liked paper
and "quantization" in a new one are the same feature.

The vectoriser is fitted once per corpus and the candidates are vectorised once per
list (readers owed the same papers share the list). A batch of readers (see
``Similarity``) vectorises the distinct papers they liked or rated in one call and
measures the candidates against all of them in one sparse product; a reader then costs
a column lookup, not a fit of the corpus nor a transform of its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from digest.models import StoredPaper
from digest.rank.text import STOP_WORDS, stem, words

# The last corpus's vectoriser, and the vectors of the candidate lists ranked against it.
# Objects are held (not only their ids), so an id is never mistaken for a new object's.
_fitted: dict[str, Any] = {}
MATRIX_CELLS = 5_000_000  # a batch's similarities held at once: up to 40 MB
LISTS_KEPT = 64  # candidate lists whose vectors (and neighbours) are kept


def _analyse(paper: StoredPaper) -> list[str]:
    text = f"{paper.paper.title} {paper.paper.title} {paper.paper.abstract}"  # title twice
    return [stem(w) for w in words(text) if w not in STOP_WORDS and not w.isdigit()]


def _vectoriser(corpus: object, candidates: Sequence[StoredPaper]) -> Any:
    """The TF-IDF vectoriser fitted on ``corpus`` (its papers, or else the candidates)."""
    if _fitted.get("corpus") is not corpus:
        from sklearn.feature_extraction.text import TfidfVectorizer  # imported when first needed

        background = list(getattr(corpus, "papers", [])) or list(candidates)
        vectorizer = TfidfVectorizer(analyzer=_analyse, sublinear_tf=True)
        vectorizer.fit(background)
        _fitted.clear()
        _fitted.update(corpus=corpus, vectorizer=vectorizer, candidates={}, neighbours={})
    return _fitted["vectorizer"]


def _per_list(
    kind: str, key: object, candidates: Sequence[StoredPaper], make: Callable[[], Any]
) -> Any:
    """What ``make`` makes of a candidate list, once per list (by ``key``, which holds
    its id) until the corpus changes: readers owed the same list share it."""
    known: dict[object, tuple[Sequence[StoredPaper], Any]] = _fitted[kind]
    found = known.get(key)
    if found is None or found[0] is not candidates:
        if len(known) > LISTS_KEPT:
            known.clear()
        found = known[key] = (candidates, make())
    return found[1]


def _candidate_vectors(vectorizer: Any, candidates: Sequence[StoredPaper]) -> Any:
    return _per_list(
        "candidates", id(candidates), candidates, lambda: vectorizer.transform(list(candidates))
    )


def neighbours(corpus: object, candidates: Sequence[StoredPaper], count: int) -> Neighbours | None:
    """Each candidate's ``count`` closest other candidates by TF-IDF cosine, weighted by
    it (the weights of each sum to 1), made once per list; None when the list has no more
    than ``2 * count`` papers (among so few, a paper's closest are not close)."""
    if len(candidates) <= 2 * count or count <= 0:
        return None
    vectors = _candidate_vectors(_vectoriser(corpus, candidates), candidates)
    return _per_list(
        "neighbours", (id(candidates), count), candidates, lambda: _closest(vectors, count)
    )


@dataclass(frozen=True, slots=True)
class Neighbours:
    """Each candidate's closest other candidates: ``columns[i]`` are candidate i's,
    ``weights[i]`` their cosines over their sum (a row of zeros shares no word with any);
    ``matrix`` the same as a sparse candidates x candidates matrix."""

    columns: np.ndarray  # candidates x count
    weights: np.ndarray
    matrix: Any


def _closest(vectors: Any, count: int) -> Neighbours:
    from scipy import sparse

    n = vectors.shape[0]
    columns, values = [], []
    step = max(1, MATRIX_CELLS // n)  # the cosines of a block of rows to all, at a time
    for start in range(0, n, step):
        block = (vectors[start : start + step] @ vectors.T).toarray()
        block[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0  # not itself
        best = np.argpartition(-block, count - 1, axis=1)[:, :count]
        columns.append(best)
        values.append(np.take_along_axis(block, best, axis=1))
    found, cosines = np.concatenate(columns), np.concatenate(values)
    totals = cosines.sum(axis=1, keepdims=True)
    weights = np.divide(cosines, totals, out=np.zeros_like(cosines), where=totals > 0)
    matrix = sparse.csr_matrix(
        (weights.ravel(), found.ravel(), np.arange(0, n * count + 1, count)), shape=(n, n)
    )
    return Neighbours(found, weights, matrix)


def latest_before(
    papers: Sequence[StoredPaper], candidates: Sequence[StoredPaper], size: int
) -> list[StoredPaper]:
    """The ``size`` latest of ``papers`` (by when they were stored) that are not
    candidates: the background a model of ratings takes its weak negatives from."""
    taken = {paper.uid for paper in candidates}
    latest = heapq.nlargest(size + len(taken), papers, key=lambda paper: paper.uid)
    return [paper for paper in latest if paper.uid not in taken][:size]


@lru_cache(maxsize=2)  # by vectoriser (one per corpus): every rated reader asks
def _stems_of(vectorizer: Any) -> tuple[str, ...]:
    return tuple(vectorizer.get_feature_names_out())


class Similarity:
    """Cosine similarities of one list of candidates to every paper a batch of readers
    liked or rated: one sparse product for the batch, then a column lookup per reader.

    Readers rate papers of the same recent digests, so a batch's distinct rated papers
    are far fewer than its votes; each is vectorised once, not once per reader.
    """

    def __init__(
        self, corpus: object, candidates: Sequence[StoredPaper], papers: Sequence[StoredPaper]
    ) -> None:
        distinct = list({paper.uid: paper for paper in papers}.values())
        self.corpus = corpus
        self.candidates = candidates
        self._background: tuple[np.ndarray, Any, list[StoredPaper]] | None = None
        self.column = {paper.uid: k for k, paper in enumerate(distinct)}
        self.row: dict[int, int] = {}
        self.matrix: np.ndarray | None = None  # candidates x rated papers, when small
        self.candidate_vectors: Any = None
        self.vectors: Any = None
        self.vectorizer: Any = None  # the one the vectors are of (the module keeps the last)
        if distinct and candidates:  # a batch nobody in has rated anything costs nothing
            self.row = {paper.uid: i for i, paper in enumerate(candidates)}
            vectorizer = self.vectorizer = _vectoriser(corpus, candidates)
            self.candidate_vectors = _candidate_vectors(vectorizer, candidates)
            self.vectors = vectorizer.transform(distinct)
            if len(candidates) * len(distinct) <= MATRIX_CELLS:
                found = self.candidate_vectors @ self.vectors.T
                self.matrix = found.toarray()

    @property
    def words(self) -> Sequence[str]:
        """The stem of each column of the vectors."""
        return _stems_of(self.vectorizer)

    @property
    def stem_columns(self) -> dict[str, int]:
        """The column of each stem of the vectors."""
        return self.vectorizer.vocabulary_

    def rows(self, papers: Sequence[StoredPaper]) -> Any:
        """The vectors of some of the papers the batch was built with."""
        return self.vectors[[self.column[paper.uid] for paper in papers]]

    def background(self, leave_out: frozenset[int], size: int) -> Any:
        """The vectors of the corpus's ``size`` latest papers that are not candidates,
        made once per batch, without those whose uid is in ``leave_out``."""
        uids, vectors, _papers = self._latest(size)
        if not leave_out or not len(uids):
            return vectors
        return vectors[self.kept(leave_out, size)]

    def latest(self, size: int) -> list[StoredPaper]:
        """The papers of ``background`` before any is left out, in the order of its rows."""
        return self._latest(size)[2]

    def kept(self, leave_out: frozenset[int], size: int) -> np.ndarray:
        """Which rows of ``latest`` ``background`` keeps."""
        uids = self._latest(size)[0]
        return ~np.isin(uids, np.fromiter(leave_out, dtype=np.int64))

    def _latest(self, size: int) -> tuple[np.ndarray, Any, list[StoredPaper]]:
        if self._background is None:
            chosen = latest_before(getattr(self.corpus, "papers", []), self.candidates, size)
            vectorizer = _vectoriser(self.corpus, self.candidates)
            vectors = vectorizer.transform(chosen) if chosen else self.vectors[:0]
            self._background = (np.array([paper.uid for paper in chosen]), vectors, chosen)
        return self._background

    def closest(self, liked: Sequence[StoredPaper]) -> tuple[np.ndarray, np.ndarray]:
        """For each candidate, the similarity to its closest paper of ``liked`` (which
        the batch was built with), and which."""
        n = len(self.candidates)
        if not liked or not n:
            return np.zeros(n), np.zeros(n, dtype=np.int64)
        columns = [self.column[paper.uid] for paper in liked]
        if self.matrix is not None:
            similarity = self.matrix[:, columns]
        else:  # too many rated papers in the batch to hold: this reader's, now
            similarity = (self.candidate_vectors @ self.vectors[columns].T).toarray()
        # A liked paper is not "similar to itself" as a recommendation.
        itself = [self.row[paper.uid] for paper in liked if paper.uid in self.row]
        similarity[itself, :] = 0.0
        return similarity.max(axis=1), similarity.argmax(axis=1)
