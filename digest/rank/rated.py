"""Points from the models of a batch of readers' ratings (rank.learn), for the ranking.

A reader who rated papers up gets a model of the ratings: the one kept from an earlier
run when the ratings are the same (its fingerprint matches), else one fitted now, left in
``fitted`` for the caller to keep. The model scores the batch's candidates on the same
vectors the liked-paper similarity uses (rank.similar), with each paper's embedding beside
them when semantic matching is on; its points only reorder papers the profile wants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from digest.models import StoredPaper
from digest.rank.learn import BACKGROUND, Taste, fingerprint, fit, taste_points, with_meaning
from digest.rank.matches import rated_up

if TYPE_CHECKING:
    from digest.rank.score import Request
    from digest.rank.similar import Similarity

# Unit vectors of papers by meaning (rows, in order), when semantic matching is on.
Meanings = Callable[[Sequence[StoredPaper]], np.ndarray]


class RatingsModels:
    """The models of one batch's readers' ratings, and the points they give."""

    def __init__(
        self,
        similarity: Similarity,
        candidates: Sequence[StoredPaper],
        weight: float,
        meanings: Meanings | None = None,
        features: str = "tfidf",
    ) -> None:
        self.similarity = similarity
        self.candidates = candidates
        self.weight = weight  # Weights.taste
        self.meanings = meanings
        self.features = features
        self.fitted: dict[int, Taste] = {}  # by reader: models of ratings fitted now
        # With meanings: the features of the candidates and of the latest papers.
        self._batch_meanings: tuple[Any, Any] | None = None

    def points(self, s: int, request: Request, scale: float) -> np.ndarray | None:
        """Reader ``s``'s points for every candidate, or None without a model: ``scale``
        is the size of the reader's best keyword scores, which the model's points take."""
        up = rated_up(request.liked, request.rated)
        if not up or self.weight <= 0 or self.similarity.vectors is None:
            return None
        similarity = self.similarity
        identity = fingerprint(
            request.rated, [paper.uid for paper in request.disliked], self.features
        )
        taste = request.taste if request.taste and request.taste.fingerprint == identity else None
        if taste is None:
            taste = self._fit(up, request, identity)
            if taste is None:
                return None
            self.fitted[s] = taste
        candidates = similarity.candidate_vectors if self.meanings is None else self._meanings()[0]
        dims = candidates.shape[1] - len(similarity.words)
        weights = taste.coefficients(similarity.stem_columns, len(similarity.words), dims)
        return taste_points(weights, candidates, taste.ratings, scale, self.weight)

    def _fit(self, up: list[StoredPaper], request: Request, identity: str) -> Taste | None:
        similarity = self.similarity
        rated = frozenset(request.rated) | {paper.uid for paper in request.disliked}
        up_rows, down_rows = similarity.rows(up), similarity.rows(request.disliked)
        if self.meanings is None:
            background = similarity.background(rated, BACKGROUND)
        else:
            background = self._meanings()[1][similarity.kept(rated, BACKGROUND)]
            up_rows = with_meaning(up_rows, self.meanings(up))
            down_rows = with_meaning(down_rows, self.meanings(request.disliked))
        return fit(up_rows, down_rows, background, similarity.words, identity)

    def _meanings(self) -> tuple[Any, Any]:
        """With meanings, the features of the candidates and of the latest papers (the
        background), made once for the batch."""
        if self._batch_meanings is None:
            similarity = self.similarity
            assert self.meanings is not None
            self._batch_meanings = (
                with_meaning(similarity.candidate_vectors, self.meanings(self.candidates)),
                with_meaning(
                    similarity.background(frozenset(), BACKGROUND),
                    self.meanings(similarity.latest(BACKGROUND)),
                ),
            )
        return self._batch_meanings
