"""Query expansion from the stream: each interest learns related words from its best papers.

A reader writes "code generation"; the papers they want also say "program", "repository",
"unit tests". Pseudo-relevance feedback (RM3) finds such words without asking: score the
interest's keywords over every paper the run knows (today's and the store's recent
background), take its best ``Weights.feedback_docs`` papers, and weigh each word of them
by how much of those papers it makes up, each paper counting in proportion to its score
(the relevance model, RM1). The ``Weights.related_terms`` words that weigh most, times
their IDF, and that are not already the interest's own words, join the interest. They
score as single words do (BM25F, stems) and are explained as "related: word".

Between them they weigh as much as ``Weights.related`` keywords of the interest (of its
keywords' mean weight), however many keywords it has. A profile of two keywords says
little of its topic and gains most from the words of its papers; one of eight already
names much of it, and its best papers, spread over eight keywords, agree less on other
words. (A share of the keywords' total weight, as RM3 interpolates, gave a two-keyword
interest a quarter of the expansion of an eight-keyword one; see
benchmarks/relevance/README.md.)

All interests of a batch are expanded at once with sparse products (interests x papers,
papers x words), and each interest once per corpus: readers who share an interest share
its expansion, and the corpus keeps it for the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from digest.rank.keywords import InterestParts
from digest.rank.profile import Interest, Term
from digest.rank.text import STOP_WORDS, stem_key

if TYPE_CHECKING:
    from digest.rank.corpus import Corpus
    from digest.rank.score import Weights

CHUNK = 512  # interests expanded together: bounds the dense interest x paper scores
MIN_PAPERS = 2  # a word of a single paper (a name, a typo) says nothing about a topic
# Below this many papers every word near a keyword looks related: there is too little
# background to tell a topic's words from chance, so small corpora are not expanded.
MIN_CORPUS = 100


@dataclass(frozen=True, slots=True)
class Related:
    """An interest's related words: single-word terms, each with its weight."""

    terms: tuple[Term, ...] = ()
    weights: tuple[float, ...] = ()


NONE = Related()


class Vocabulary:
    """Every stem of the corpus as a column (title and abstract together, all forms of a
    stem in one): each paper's share of each word, how many papers hold it, and the word
    a reader would recognise for it (its most frequent spelling)."""

    def __init__(self, corpus: Corpus) -> None:
        title, abstract = corpus.fields["title"], corpus.fields["abstract"]
        keys = list(dict.fromkeys(_root(k) for k in [*title.stems.index, *abstract.stems.index]))
        self.column = {key: c for c, key in enumerate(keys)}
        counts = sum(
            _remapped(field.stems.matrix, field.stems.index, self.column)
            for field in (title, abstract)
        )
        counts = sparse.csr_matrix(counts)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        self.shares = sparse.csr_matrix(sparse.diags(1.0 / np.maximum(lengths, 1.0)) @ counts)
        self.papers = np.bincount(counts.indices, minlength=len(keys))  # document frequency
        self.words = _spellings(corpus, self.column, len(keys))
        self.usable = np.array(
            [
                len(word) > 2 and not word.isdigit() and word not in STOP_WORDS
                for word in self.words
            ],
            dtype=bool,
        ) & (self.papers >= MIN_PAPERS)
        n = max(corpus.size, 1)
        self.idf = np.log(1.0 + (n - self.papers + 0.5) / (self.papers + 0.5))
        self._terms: dict[int, Term] = {}

    def term(self, column: int) -> Term:
        found = self._terms.get(column)
        if found is None:
            word = self.words[column]
            found = self._terms[column] = Term(text=word, words=(word,))
        return found

    def own_columns(self, interest: Interest) -> list[int]:
        """The columns of the interest's own words (in any form), which it never adds."""
        found = []
        for keyword in interest.keywords:
            for word in keyword.words:
                column = self.column.get(_root(stem_key(word)))
                if column is not None:
                    found.append(column)
        return found


def expand(corpus: Corpus, interests: Sequence[Interest], weights: Weights) -> list[Related]:
    """The related words of each interest (computed once per corpus, then kept)."""
    cache = corpus.expansions
    todo = list(
        dict.fromkeys(
            i.keywords for i in interests if i.keywords and (weights, i.keywords) not in cache
        )
    )
    if todo and weights.related > 0 and weights.related_terms > 0 and corpus.size >= MIN_CORPUS:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            found = _expand_chunk(corpus, [Interest(None, k) for k in chunk], weights)
            cache.update(((weights, k), r) for k, r in zip(chunk, found, strict=True))
    return [cache.get((weights, i.keywords), NONE) for i in interests]


def _expand_chunk(corpus: Corpus, interests: list[Interest], weights: Weights) -> list[Related]:
    vocabulary = corpus.vocabulary()
    table = corpus.table(corpus.papers, weights)  # every paper of the run is feedback
    parts = InterestParts(table.keywords)
    for interest in interests:
        parts.add_interest(interest)
    arrays = parts.arrays()
    rows = np.repeat(np.arange(arrays.rows), np.diff(arrays.ptr))
    query = sparse.csr_matrix((arrays.weight, (rows, arrays.term)), shape=(arrays.rows, len(table)))
    scores = (query @ table.matrix()).toarray()  # interest x paper (table order)
    k = min(weights.feedback_docs, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, best, axis=1)
    top = np.where(top > 0, top, 0.0)
    totals = top.sum(axis=1, keepdims=True)
    share = np.divide(top, totals, out=np.zeros_like(top), where=totals > 0)
    feedback = sparse.csr_matrix(
        (share.ravel(), (np.repeat(np.arange(len(interests)), k), table.rows[best.ravel()])),
        shape=(len(interests), corpus.size),
    )
    model = sparse.csr_matrix(feedback @ vocabulary.shares)  # interest x word: RM1
    model.eliminate_zeros()
    row = np.repeat(np.arange(len(interests)), np.diff(model.indptr))
    column, weight = model.indices, model.data
    keep = vocabulary.usable[column]
    own = {(r, c) for r, interest in enumerate(interests) for c in vocabulary.own_columns(interest)}
    if own:
        width = len(vocabulary.words)
        codes = np.fromiter((r * width + c for r, c in own), dtype=np.int64, count=len(own))
        keep &= ~np.isin(row * width + column, codes)
    row, column, weight = row[keep], column[keep], weight[keep]
    order = np.lexsort((column, -weight * vocabulary.idf[column], row))
    row, column, weight = row[order], column[order], weight[order]
    starts = np.searchsorted(row, np.arange(len(interests) + 1))
    rank_in_row = np.arange(len(row)) - starts[row]
    keep = rank_in_row < weights.related_terms
    row, column, weight = row[keep], column[keep], weight[keep]
    bounds = np.searchsorted(row, np.arange(len(interests) + 1))
    found = []
    for r, interest in enumerate(interests):
        a, b = bounds[r], bounds[r + 1]
        if a == b:
            found.append(NONE)
            continue
        mean_weight = sum(t.weight for t in interest.keywords) / len(interest.keywords)
        total = weights.related * mean_weight
        mass = weight[a:b] / weight[a:b].sum()
        found.append(
            Related(
                tuple(vocabulary.term(int(c)) for c in column[a:b]),
                tuple(float(total * m) for m in mass),
            )
        )
    return found


def _root(key: str) -> str:
    """A stem key without its form: "models" and "model" are one related word."""
    return key.partition("+")[0]


def _remapped(
    matrix: sparse.csc_matrix, index: dict[str, int], column: dict[str, int]
) -> sparse.csr_matrix:
    """A field's paper x token counts with its columns moved to the shared vocabulary."""
    target = np.zeros(max(len(index), 1), dtype=np.int64)
    for key, c in index.items():
        target[c] = column[_root(key)]
    coo = matrix.tocoo()
    return sparse.csr_matrix(
        (coo.data, (coo.row, target[coo.col])), shape=(matrix.shape[0], len(column))
    )


def _spellings(corpus: Corpus, column: dict[str, int], width: int) -> list[str]:
    """For each stem, the spelling it has most often in the corpus (the first one met, of
    those as frequent), a bare form ("model", not "models") if it has one: a related word
    matches every form of its stem only when spelt bare (see text.compatible)."""
    seen: dict[str, float] = {}
    for field in corpus.fields.values():
        counts = np.asarray(field.words.matrix.sum(axis=0)).ravel()
        for word, c in field.words.index.items():
            seen[word] = seen.get(word, 0.0) + float(counts[c])
    best: list[str] = [""] * width
    most = np.full(width, -1.0)
    for word, count in seen.items():
        key = stem_key(word)
        place = column.get(_root(key))
        rank = count + (0.0 if "+" in key else BARE)  # any bare form before a marked one
        if place is not None and rank > most[place]:
            most[place], best[place] = rank, word
    return best


BARE = 1e12  # more than any count of a word
