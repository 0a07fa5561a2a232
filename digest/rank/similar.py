"""Similarity to papers a reader liked: TF-IDF cosine over stems, fitted on the corpus.

scikit-learn's vectoriser does the weighting and normalisation; our own analyser (the
same stems the keyword scoring uses) does the tokens, so "quantized" in a liked paper
and "quantization" in a new one are the same feature.

The vectoriser is fitted once per corpus and the candidates are vectorised once per
list (readers owed the same papers share the list), so a reader with liked or rated
papers costs the few liked papers' vectors and one sparse product, not a fit of the
whole corpus: every reader who rates a paper has liked papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from digest.models import StoredPaper
from digest.rank.text import STOP_WORDS, stem, words

# The last corpus's vectoriser, and the vectors of the candidate lists ranked against it.
# Objects are held (not only their ids), so an id is never mistaken for a new object's.
_fitted: dict[str, Any] = {}


def _analyse(paper: StoredPaper) -> list[str]:
    text = f"{paper.paper.title} {paper.paper.title} {paper.paper.abstract}"  # title twice
    return [stem(w) for w in words(text) if w not in STOP_WORDS and not w.isdigit()]


def _vectoriser(corpus: object, candidates: Sequence[StoredPaper]) -> Any:
    """The TF-IDF vectoriser fitted on ``corpus`` (its papers, or else the candidates)."""
    if _fitted.get("corpus") is not corpus:
        from sklearn.feature_extraction.text import TfidfVectorizer  # only readers with likes

        background = list(getattr(corpus, "papers", [])) or list(candidates)
        vectorizer = TfidfVectorizer(analyzer=_analyse, sublinear_tf=True)
        vectorizer.fit(background)
        _fitted.clear()
        _fitted.update(corpus=corpus, vectorizer=vectorizer, candidates={})
    return _fitted["vectorizer"]


def _candidate_vectors(vectorizer: Any, candidates: Sequence[StoredPaper]) -> Any:
    known: dict[int, tuple[Sequence[StoredPaper], Any]] = _fitted["candidates"]
    found = known.get(id(candidates))
    if found is None or found[0] is not candidates:
        if len(known) > 64:
            known.clear()
        found = known[id(candidates)] = (candidates, vectorizer.transform(list(candidates)))
    return found[1]


def liked_similarity(
    corpus: object, candidates: Sequence[StoredPaper], liked: Sequence[StoredPaper]
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate, the cosine similarity to its closest liked paper, and which."""
    if not liked or not candidates:
        return np.zeros(len(candidates)), np.zeros(len(candidates), dtype=np.int64)
    vectorizer = _vectoriser(corpus, candidates)
    candidate_vectors = _candidate_vectors(vectorizer, candidates)
    liked_vectors = vectorizer.transform(list(liked))
    similarity = (candidate_vectors @ liked_vectors.T).toarray()
    # A liked paper is not "similar to itself" as a recommendation.
    liked_ids = {paper.uid for paper in liked}
    for i, paper in enumerate(candidates):
        if paper.uid in liked_ids:
            similarity[i, :] = 0.0
    return similarity.max(axis=1), similarity.argmax(axis=1)
