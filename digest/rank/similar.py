"""Similarity to papers a reader liked: TF-IDF cosine over stems, fitted on the corpus.

scikit-learn's vectoriser does the weighting and normalisation; our own analyser (the
same stems the keyword scoring uses) does the tokens, so "quantized" in a liked paper
and "quantization" in a new one are the same feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digest.models import StoredPaper
from digest.rank.text import STOP_WORDS, stem, words


def _analyse(paper: StoredPaper) -> list[str]:
    text = f"{paper.paper.title} {paper.paper.title} {paper.paper.abstract}"  # title twice
    return [stem(w) for w in words(text) if w not in STOP_WORDS and not w.isdigit()]


def liked_similarity(
    corpus: object, candidates: Sequence[StoredPaper], liked: Sequence[StoredPaper]
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate, the cosine similarity to its closest liked paper, and which."""
    if not liked or not candidates:
        return np.zeros(len(candidates)), np.zeros(len(candidates), dtype=np.int64)
    from sklearn.feature_extraction.text import TfidfVectorizer  # only readers with likes

    background = list(getattr(corpus, "papers", [])) or list(candidates)
    vectorizer = TfidfVectorizer(analyzer=_analyse, sublinear_tf=True)
    vectorizer.fit([*background, *liked])
    candidate_vectors = vectorizer.transform(list(candidates))
    liked_vectors = vectorizer.transform(list(liked))
    similarity = (candidate_vectors @ liked_vectors.T).toarray()
    # A liked paper is not "similar to itself" as a recommendation.
    liked_ids = {paper.uid for paper in liked}
    for i, paper in enumerate(candidates):
        if paper.uid in liked_ids:
            similarity[i, :] = 0.0
    return similarity.max(axis=1), similarity.argmax(axis=1)
