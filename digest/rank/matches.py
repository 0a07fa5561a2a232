"""Explanations: every point of a paper's score as a Match, for many papers at once.

A keyword's points in a field come from up to three ways of matching (its exact phrase,
its words near each other, its words one by one); they become one Match, named after the
strongest way, with all the points. The hits of every (paper, keyword part) pair of a
batch are found and scored with array operations; only the final Matches are Python
objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise, repeat
from typing import TYPE_CHECKING

import numpy as np

from digest.models import Match, StoredPaper
from digest.rank.parts import KINDS
from digest.rank.profile import MAX_WORDS, Interest, Profile
from digest.rank.table import TermTable

if TYPE_CHECKING:
    from digest.rank.score import Weights

_FIELDS = ("title", "abstract")
LIKED_THRESHOLD = 0.05  # cosine similarity below this is noise, not a reason
WORD_BITS = (1 << MAX_WORDS) - 1


class InterestParts:
    """The parts of many interests, flattened: interest ``r`` owns parts
    ``ptr[r]:ptr[r+1]``, each with its term row, weight, kind, keyword and word. A word
    part also has its bit among its keyword's words, and the keyword its number in the
    table, so that which words of a keyword matched is named once per run."""

    def __init__(self) -> None:
        self.ptr = [0]
        self.term: list[int] = []
        self.weight: list[float] = []
        self.kind: list[int] = []
        self.keyword: list[int] = []  # index into keyword_text, one per interest and text
        self.via: list[str] = []
        self.bit: list[int] = []  # 1 << (its place among the keyword's words), 0 if none
        self.known: list[int] = []  # the keyword's number in the table
        self.keyword_text: list[str] = []

    @property
    def rows(self) -> int:
        return len(self.ptr) - 1

    def add_interest(self, interest: Interest, table: TermTable) -> None:
        seen: dict[str, int] = {}
        for keyword in interest.keywords:
            number = seen.get(keyword.text)
            if number is None:
                number = seen[keyword.text] = len(self.keyword_text)
                self.keyword_text.append(keyword.text)
            parts = table.parts_of(keyword)
            self.term += parts.terms
            self.weight += parts.weights
            self.kind += parts.kinds
            self.keyword += [number] * len(parts.terms)
            self.via += parts.via
            self.bit += parts.bits
            self.known += [parts.number] * len(parts.terms)
        self.ptr.append(len(self.term))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (
            np.array(self.ptr, dtype=np.int64),
            np.array(self.term, dtype=np.int64),
            np.array(self.weight, dtype=np.float64),
            np.array(self.kind, dtype=np.int64),
            np.array(self.keyword, dtype=np.int64),
        )


def keyword_matches(
    table: TermTable,
    parts: InterestParts,
    interests: np.ndarray,
    columns: np.ndarray,
    weights: Weights,
) -> tuple[list[list[Match]], list[float]]:
    """For each pair (interest row, candidate): one Match per keyword and field, and the
    sum of their points (added in the same order as ``sum`` would)."""
    if not len(interests) or not parts.term:
        return [[] for _ in range(len(interests))], [0.0] * len(interests)
    ptr, part_term, part_weight, part_kind, part_keyword = parts.arrays()
    # Every part of each pair's interest, then the ones whose term occurs in the paper.
    starts, sizes = ptr[interests], ptr[interests + 1] - ptr[interests]
    pair = np.repeat(np.arange(len(interests)), sizes)
    part = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes - starts, sizes)
    hit, entry = table.lookup(part_term[part], columns[pair], among=np.unique(part_term))
    pair, part, entry = pair[hit], part[hit], entry[hit]
    if not len(pair):
        return [[] for _ in range(len(interests))], [0.0] * len(interests)
    title, abstract = table.title[entry], table.abstract[entry]
    k1 = weights.k1
    share = part_weight[part] * table.idf[part_term[part]] * (k1 + 1) / (title + abstract + k1)
    # One row per (hit, field where it occurs).
    in_title, in_abstract = table.title_count[entry] > 0, table.abstract_count[entry] > 0
    pair = np.concatenate((pair[in_title], pair[in_abstract]))
    field = np.repeat(np.array([0, 1]), [in_title.sum(), in_abstract.sum()])
    title_count, abstract_count = table.title_count[entry], table.abstract_count[entry]
    count = np.concatenate((title_count[in_title], abstract_count[in_abstract]))
    points = np.concatenate(((share * title)[in_title], (share * abstract)[in_abstract]))
    part = np.concatenate((part[in_title], part[in_abstract]))
    keyword, kind = part_keyword[part], part_kind[part]
    # Group by (pair, keyword, field), the strongest way first in each group.
    key = ((pair * (int(keyword.max()) + 1) + keyword) * 2 + field) * len(KINDS) + kind
    order = np.argsort(key, kind="stable")
    pair, keyword, field, kind = pair[order], keyword[order], field[order], kind[order]
    count, points, part = count[order], points[order], part[order]
    new = np.ones(len(pair), dtype=bool)
    new[1:] = (pair[1:] != pair[:-1]) | (keyword[1:] != keyword[:-1]) | (field[1:] != field[:-1])
    first = np.flatnonzero(new)
    # One Match per group, its columns built as whole lists.
    strongest = kind[first]
    words = np.array(parts.via, dtype=object)[part[first]]  # right for a group of one word
    sizes = np.diff(np.append(first, len(pair)))
    several = np.flatnonzero((strongest == 2) & (sizes > 1))
    if len(several):  # several words matched alone: name them all (once per run)
        bits = np.bitwise_or.reduceat(np.array(parts.bit, dtype=np.int64)[part], first)
        known = np.array(parts.known, dtype=np.int64)[part[first[several]]]
        codes = (known << MAX_WORDS) | bits[several]
        unique, inverse = np.unique(codes, return_inverse=True)
        named = [table.words_of(int(c) >> MAX_WORDS, int(c) & WORD_BITS) for c in unique]
        words[several] = np.array(named, dtype=object)[inverse]
    words[strongest != 2] = ""
    number = np.where(strongest == 2, np.maximum.reduceat(count, first), count[first])
    rounded = np.round(np.add.reduceat(points, first), 4)
    columns = (
        np.array(parts.keyword_text, dtype=object)[keyword[first]].tolist(),
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


def signal_matches(
    profile: Profile,
    table: TermTable,
    paper: StoredPaper,
    row: int,
    weights: Weights,
    similarity: float,
    closest: int,
    liked: Sequence[StoredPaper],
) -> list[Match]:
    """Matches for what is not a keyword: authors, a category, popularity, a liked paper."""
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
        found.append(Match(liked[closest].paper.title, "liked", 1, points, "signal"))
    return found
