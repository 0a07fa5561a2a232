"""Explanations: every point of a paper's score as a Match, for many papers at once.

A keyword's points in a field come from up to three ways of matching (its exact phrase,
its words near each other, its words one by one); they become one Match, named after the
strongest way, with all the points. An interest's related words (rank.expand) in a field
become one Match of kind "related", naming the words that matched, strongest first.
The hits of every (paper, keyword part) pair of a batch are found and scored with array
operations; only the final Matches are Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise, repeat
from typing import TYPE_CHECKING

import numpy as np

from digest.models import Match, StoredPaper
from digest.rank.keywords import RELATED, InterestParts, ranges
from digest.rank.parts import KINDS
from digest.rank.profile import MAX_WORDS, Profile
from digest.rank.table import TermTable

if TYPE_CHECKING:
    from digest.rank.score import Weights

_FIELDS = ("title", "abstract")
LIKED_THRESHOLD = 0.05  # cosine similarity below this is noise, not a reason
WORD_BITS = (1 << MAX_WORDS) - 1


def keyword_matches(
    table: TermTable,
    interest_parts: InterestParts,
    interests: np.ndarray,
    columns: np.ndarray,
    weights: Weights,
) -> tuple[list[list[Match]], list[float]]:
    """For each pair (interest row, candidate): one Match per keyword and field, and the
    sum of their points (added in the same order as ``sum`` would)."""
    parts = interest_parts.arrays()
    if not len(interests) or not len(parts.term):
        return [[] for _ in range(len(interests))], [0.0] * len(interests)
    # Every part of each pair's interest, then the ones whose term occurs in the paper.
    sizes = parts.ptr[interests + 1] - parts.ptr[interests]
    pair = np.repeat(np.arange(len(interests)), sizes)
    part = ranges(parts.ptr[interests], sizes)
    hit, entry = table.lookup(parts.term[part], columns[pair], among=np.unique(parts.term))
    pair, part, entry = pair[hit], part[hit], entry[hit]
    if not len(pair):
        return [[] for _ in range(len(interests))], [0.0] * len(interests)
    title, abstract = table.title[entry], table.abstract[entry]
    k1 = weights.k1
    share = parts.weight[part] * table.idf[parts.term[part]] * (k1 + 1) / (title + abstract + k1)
    # One row per (hit, field where it occurs).
    in_title, in_abstract = table.title_count[entry] > 0, table.abstract_count[entry] > 0
    pair = np.concatenate((pair[in_title], pair[in_abstract]))
    field = np.repeat(np.array([0, 1]), [in_title.sum(), in_abstract.sum()])
    title_count, abstract_count = table.title_count[entry], table.abstract_count[entry]
    count = np.concatenate((title_count[in_title], abstract_count[in_abstract]))
    points = np.concatenate(((share * title)[in_title], (share * abstract)[in_abstract]))
    part = np.concatenate((part[in_title], part[in_abstract]))
    text, kind = parts.text[part], parts.kind[part]
    # Group by (pair, keyword text, field), the strongest way first in each group.
    key = ((pair * (int(text.max()) + 1) + text) * 2 + field) * len(KINDS) + kind
    order = np.argsort(key, kind="stable")
    pair, text, field, kind = pair[order], text[order], field[order], kind[order]
    count, points, part = count[order], points[order], part[order]
    new = np.ones(len(pair), dtype=bool)
    new[1:] = (pair[1:] != pair[:-1]) | (text[1:] != text[:-1]) | (field[1:] != field[:-1])
    related = kind == RELATED
    new[1:] |= related[1:] != related[:-1]  # a keyword "related" is not the related words
    first = np.flatnonzero(new)
    # One Match per group, its columns built as whole lists.
    strongest = kind[first]
    words = parts.via[part[first]]  # right for a group of one word
    sizes = np.diff(np.append(first, len(pair)))
    several = np.flatnonzero((strongest == 2) & (sizes > 1))
    if len(several):  # several words matched alone: name them all (once per run)
        bits = np.bitwise_or.reduceat(parts.bit[part], first)
        codes = (parts.keyword[part[first[several]]] << MAX_WORDS) | bits[several]
        unique, inverse = np.unique(codes, return_inverse=True)
        named = [table.keywords.words_of(int(c) >> MAX_WORDS, int(c) & WORD_BITS) for c in unique]
        words[several] = np.array(named, dtype=object)[inverse]
    words[strongest < 2] = ""
    if related.any():  # name the related words of each group, strongest first
        rows = np.flatnonzero(related)
        group = np.searchsorted(first, rows, side="right") - 1
        rows = rows[np.lexsort((-points[rows], group))]
        named = parts.via[part[rows]].tolist()
        groups = np.flatnonzero(strongest == RELATED)
        bounds = [*np.searchsorted(np.sort(group), groups).tolist(), len(rows)]
        for g, a, b in zip(groups.tolist(), bounds, bounds[1:], strict=False):
            words[g] = " ".join(named[a:b])
    number = np.where(strongest >= 2, np.maximum.reduceat(count, first), count[first])
    rounded = np.round(np.add.reduceat(points, first), 4)
    columns = (
        np.array(table.keywords.texts, dtype=object)[text[first]].tolist(),
        np.array(_FIELDS, dtype=object)[field[first]].tolist(),
        number.astype(np.int64).tolist(),
        rounded.tolist(),
        np.array(KINDS, dtype=object)[strongest].tolist(),
        words.tolist(),
    )
    matches = list(map(tuple.__new__, repeat(Match), zip(*columns, strict=True)))
    bounds = np.searchsorted(pair[first], np.arange(len(interests) + 1)).tolist()
    totals = np.bincount(pair[first], weights=rounded, minlength=len(interests)).tolist()
    return [matches[a:b] for a, b in pairwise(bounds)], totals


def rated_up(liked: Sequence[StoredPaper], rated: frozenset[int]) -> list[StoredPaper]:
    """The liked papers the reader rated up, in their order: what the model's ``fondest``
    index counts in."""
    return [paper for paper in liked if paper.uid in rated]


def signal_matches(
    profile: Profile,
    table: TermTable,
    paper: StoredPaper,
    row: int,
    weights: Weights,
    similarity: float,
    closest: int,
    liked: Sequence[StoredPaper],
    *,
    rated: frozenset[int] = frozenset(),
    against: float = 0.0,
    nearest: int = 0,
    disliked: Sequence[StoredPaper] = (),
    taste: float = 0.0,
    fondest: int = 0,
) -> list[Match]:
    """Matches for what is not a keyword: authors, a category, popularity, a liked paper
    (field "liked", or "rated" when the reader rated it up), a paper rated down
    ("disliked", negative points), the model of the reader's ratings ("taste", points
    either way; when they are above zero its term is the title of the paper rated up
    the candidate is closest to, ``fondest`` of them; its count is the number of ratings
    it learnt from)."""
    corpus = table.corpus
    found: list[Match] = []
    for name in profile.authors:
        if row in corpus.rows_by_author(name):
            found.append(Match(name, "authors", 1, weights.author, "signal"))
    if profile.category_mode == "boost":
        wanted = {c.lower() for c in profile.categories}
        for category in paper.paper.categories:
            if category.lower() in wanted:
                found.append(Match(category, "category", 1, weights.category, "signal"))
                break
    upvotes, stars = paper.paper.upvotes, paper.paper.github_stars
    if profile.popularity_weight > 0 and upvotes:
        points = profile.popularity_weight * math.log1p(upvotes)
        found.append(Match(f"{upvotes} upvotes", "popularity", upvotes, round(points, 4), "signal"))
    if profile.popularity_weight > 0 and stars:
        points = profile.popularity_weight * weights.stars_share * math.log1p(stars)
        found.append(
            Match(f"{stars} GitHub stars", "popularity", stars, round(points, 4), "signal")
        )
    if liked and similarity > LIKED_THRESHOLD:
        points = round(weights.liked * float(similarity), 4)
        kind = "rated" if liked[closest].uid in rated else "liked"
        found.append(Match(liked[closest].paper.title, kind, 1, points, "signal"))
    if disliked and against > LIKED_THRESHOLD:
        points = -round(weights.disliked * float(against), 4)
        found.append(Match(disliked[nearest].paper.title, "disliked", 1, points, "signal"))
    if taste:
        up = rated_up(liked, rated)
        ratings = len(up) + len(disliked)
        # A paper it moved up names the paper rated up it is most like; one moved down does not.
        term = up[fondest].paper.title if taste > 0 else "your ratings"
        found.append(Match(term, "taste", ratings, round(taste, 4), "signal"))
    return found
