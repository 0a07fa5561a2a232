"""Score candidate papers for one profile: BM25F over title and abstract, plus signals.

Pure: a profile, the analysed corpus and the candidates in; a Ranking out. For each part of
each keyword of each interest (see Term.parts), the corpus gives its BM25F points where it
occurs (title weighted above abstract, each normalised by its length, saturated, scaled
by IDF); the profile adds them up per interest, and a paper belongs to the interest it
scores best in. Authors, categories, popularity and similarity to liked papers add points
of their own. The arithmetic runs over arrays, for all candidates at once; explanations
(every point as a Match) are built only for the papers that are kept, and on demand for
the others. Ties are broken by the order papers were first stored in: the same inputs
always give the same order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digest.models import Match, Scored, StoredPaper
from digest.rank.corpus import Corpus
from digest.rank.profile import Profile, Term
from digest.rank.similar import liked_similarity


@dataclass(frozen=True, slots=True)
class Weights:
    """The scoring constants, in one value so they can be compared side by side.

    The defaults are textbook values (BM25's k1 and b, a sequential dependence model's
    mix of phrase, proximity and word evidence), not fitted to any labelled set.
    """

    k1: float = 1.2
    b_title: float = 0.3  # titles are all short: little length normalisation
    b_abstract: float = 0.75
    title: float = 2.5  # BM25F field weights
    abstract: float = 1.0
    phrase: float = 1.0  # how much each way of matching a keyword counts (Term.parts)
    near: float = 0.5
    word: float = 1.0  # shared by the words of a phrase: a keyword counts once
    author: float = 3.0
    category: float = 1.0
    liked: float = 6.0  # times the cosine similarity to the closest liked paper
    stars_share: float = 0.5  # GitHub stars count half as much as upvotes

    def field(self, name: str) -> float:
        return self.title if name == "title" else self.abstract

    def b(self, name: str) -> float:
        return self.b_title if name == "title" else self.b_abstract

    def part(self, keyword: Term, kind: str) -> float:
        if kind == "word":
            return self.word / len(keyword.words)
        return self.near if kind == "near" else self.phrase


DEFAULT_WEIGHTS = Weights()
LIKED_THRESHOLD = 0.05  # cosine similarity below this is noise, not a reason


@dataclass(frozen=True, slots=True)
class _Part:
    keyword: Term  # what the reader wrote
    term: Term  # what is matched: the phrase itself, its words near each other, or one word
    kind: str
    weight: float


@dataclass(slots=True)
class Ranking:
    """The digest's papers (best first, grouped by interest) and every candidate's score."""

    selected: list[Scored]
    candidates: Sequence[StoredPaper] = ()
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _explain: Any = None

    @property
    def considered(self) -> list[Scored]:
        """The candidates not kept, scored and explained (built on demand), in stored order."""
        kept = {item.paper.uid for item in self.selected}
        return [
            self._explain(i)
            for i, paper in sorted(enumerate(self.candidates), key=lambda x: x[1].uid)
            if paper.uid not in kept
        ]


def rank(
    profile: Profile,
    corpus: Corpus,
    candidates: Sequence[StoredPaper],
    liked: Sequence[StoredPaper] = (),
    weights: Weights = DEFAULT_WEIGHTS,
) -> Ranking:
    """Score every candidate; keep the best ``max_papers`` that are eligible."""
    if not candidates:
        return Ranking([])
    rows = corpus.rows_of(candidates)
    position = np.full(corpus.size, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    n = len(rows)
    parts = [
        [
            _Part(keyword, term, kind, keyword.weight * weights.part(keyword, kind))
            for keyword in i.keywords
            for kind, term in keyword.parts()
        ]
        for i in profile.interests
    ]
    totals = np.zeros((len(parts), n))
    strong = np.zeros((len(parts), n), dtype=bool)  # a phrase or its words near each other
    for k, interest_parts in enumerate(parts):
        for part in interest_parts:
            stats = corpus.stats(part.term)
            at = position[stats.rows]
            hit = at >= 0
            totals[k, at[hit]] += part.weight * corpus.points(part.term, weights)[hit]
            if part.kind != "word":
                strong[k, at[hit]] = True
    for k, interest in enumerate(profile.interests):
        blocked = _any(interest.exclude, corpus, position, n)
        if interest.require:
            blocked |= ~_any(interest.require, corpus, position, n)
        totals[k, blocked] = -np.inf if len(parts) > 1 else 0.0
    best = np.argmax(totals, axis=0)
    keyword_points = np.maximum(totals[best, np.arange(n)], 0.0)
    relevant = strong[best, np.arange(n)]

    signals = np.zeros(n)
    signalled = np.zeros(n, dtype=bool)  # authors or liked papers make a paper eligible
    for name in profile.authors:
        hit = _mask(corpus.rows_by_author(name), position, n)
        signals += weights.author * hit
        signalled |= hit
    wanted = {c.lower() for c in profile.categories}
    in_category = np.zeros(n, dtype=bool)
    for category in wanted:
        in_category |= _mask(corpus.rows_in_category(category), position, n)
    if profile.category_mode == "boost":
        signals += weights.category * in_category
    if profile.popularity_weight > 0:
        signals += profile.popularity_weight * (
            np.log1p(corpus.upvotes[rows]) + weights.stars_share * np.log1p(corpus.stars[rows])
        )
    similarity, closest = liked_similarity(corpus, candidates, liked)
    liked_hit = similarity > LIKED_THRESHOLD
    signals += np.where(liked_hit, weights.liked * similarity, 0.0)
    signalled |= liked_hit

    scores = np.round(keyword_points + signals, 4)
    eligible = ~_any(profile.exclude, corpus, position, n)
    if profile.require:
        eligible &= _any(profile.require, corpus, position, n)
    if profile.sources:
        wanted_sources = set(profile.sources)
        eligible &= np.array([bool(wanted_sources & set(p.paper.sources)) for p in candidates])
    if profile.category_mode == "keep" and wanted:
        unknown = np.array([not p.paper.categories for p in candidates])
        eligible &= in_category | unknown
    if profile.takes_everything:
        eligible &= scores >= profile.min_score
    else:
        eligible &= (relevant | signalled) & (scores > max(profile.min_score, 0.0))

    def explain_many(indices: Sequence[int]) -> list[Scored]:
        chosen_rows = rows[list(indices)]
        by_interest: dict[int, list[int]] = {}
        for j, i in enumerate(indices):
            # An interest whose exclusions or requirements blocked the paper gives nothing.
            if keyword_points[i] > 0:
                by_interest.setdefault(int(best[i]), []).append(j)
        keyword_matches: list[list[Match]] = [[] for _ in indices]
        for interest, members in by_interest.items():
            found = _keyword_matches(parts[interest], corpus, chosen_rows[members], weights)
            for j, matches in zip(members, found, strict=True):
                keyword_matches[j] = matches
        result = []
        for j, i in enumerate(indices):
            extra = _signal_matches(
                profile,
                corpus,
                candidates[i],
                int(rows[i]),
                weights,
                similarity[i],
                closest[i],
                liked,
            )
            matches = keyword_matches[j] + extra
            score = round(sum(m.points for m in matches), 4)
            result.append(
                Scored(candidates[i], score, tuple(matches), profile.interests[int(best[i])].name)
            )
        return result

    def explain(i: int) -> Scored:
        return explain_many([i])[0]

    chosen = np.flatnonzero(eligible)
    order = chosen[np.lexsort((corpus.uids[rows[chosen]], -scores[chosen]))][: profile.max_papers]
    selected = _by_section(explain_many([int(i) for i in order]))
    return Ranking(selected, candidates, scores, eligible, explain)


def _mask(found: set[int], position: np.ndarray, n: int) -> np.ndarray:
    hit = np.zeros(n, dtype=bool)
    if found:
        at = position[np.fromiter(found, dtype=np.int64)]
        hit[at[at >= 0]] = True
    return hit


def _any(terms: Sequence[Term], corpus: Corpus, position: np.ndarray, n: int) -> np.ndarray:
    hit = np.zeros(n, dtype=bool)
    for term in terms:
        at = position[corpus.stats(term).rows]
        hit[at[at >= 0]] = True
    return hit


def _by_section(best_first: list[Scored]) -> list[Scored]:
    """Digest order: papers grouped by interest, groups in the order of their best paper."""
    groups: dict[str | None, list[Scored]] = {}
    for item in best_first:
        groups.setdefault(item.section, []).append(item)
    return [item for group in groups.values() for item in group]


_STRENGTH = {"phrase": 0, "near": 1, "word": 2}


def _keyword_matches(
    parts: list[_Part], corpus: Corpus, rows: np.ndarray, weights: Weights
) -> list[list[Match]]:
    """For each of ``rows``: one Match per keyword and field, holding all its points.

    A keyword's Match in a field names the strongest way it matched there (the phrase,
    else its words near each other, else which words on their own) and adds up the points
    of every way, so the Matches of a paper still sum to its score. Each part is looked
    up for all rows at once; the arithmetic per hit uses Python floats (rounding numpy
    scalars one by one costs more than the lookup).
    """
    merged: list[dict[tuple[str, str], list[Any]]] = [{} for _ in range(len(rows))]
    norms = corpus.norms(weights)
    k1, w_title, w_abstract = weights.k1, weights.title, weights.abstract
    for part in parts:
        stats = corpus.stats(part.term)
        if not len(stats.rows):
            continue
        at = np.minimum(np.searchsorted(stats.rows, rows), len(stats.rows) - 1)
        hits = np.flatnonzero(stats.rows[at] == rows)
        if not len(hits):
            continue
        found_at, found_rows = at[hits], rows[hits]
        scale = part.weight * corpus.idf(part.term) * (k1 + 1)
        keyword, kind = part.keyword.text, part.kind
        via = part.term.text if kind == "word" else ""
        for j, in_title, in_abstract, title_norm, abstract_norm in zip(
            hits.tolist(),
            stats.title[found_at].tolist(),
            stats.abstract[found_at].tolist(),
            norms["title"][found_rows].tolist(),
            norms["abstract"][found_rows].tolist(),
            strict=True,
        ):
            title = w_title * in_title / title_norm
            abstract = w_abstract * in_abstract / abstract_norm
            share = scale / (title + abstract + k1)  # points per unit of combined frequency
            paper = merged[j]
            if in_title:
                _add(paper, (keyword, "title"), kind, via, in_title, share * title)
            if in_abstract:
                _add(paper, (keyword, "abstract"), kind, via, in_abstract, share * abstract)
    return [
        [
            Match(term, f, int(count), round(points, 4), kind, " ".join(via))
            for (term, f), (kind, count, points, via) in found.items()
        ]
        for found in merged
    ]


def _add(
    found: dict[tuple[str, str], list[Any]],
    key: tuple[str, str],
    kind: str,
    via: str,
    count: float,
    points: float,
) -> None:
    entry = found.get(key)
    if entry is None:
        found[key] = [kind, count, points, [via] if via else []]
        return
    entry[2] += points
    if _STRENGTH[kind] < _STRENGTH[entry[0]]:
        entry[0], entry[1], entry[3] = kind, count, [via] if via else []
    elif kind == "word" == entry[0]:
        entry[1] = max(entry[1], count)
        entry[3].append(via)


def _signal_matches(
    profile: Profile,
    corpus: Corpus,
    paper: StoredPaper,
    row: int,
    weights: Weights,
    similarity: float,
    closest: int,
    liked: Sequence[StoredPaper],
) -> list[Match]:
    found: list[Match] = []
    for name in profile.authors:
        if row in corpus.rows_by_author(name):
            found.append(Match(name, "authors", 1, weights.author, "signal"))
    if profile.category_mode == "boost":
        for category in paper.paper.categories:
            if row in corpus.rows_in_category(category) and category.lower() in {
                c.lower() for c in profile.categories
            }:
                found.append(Match(category, "category", 1, weights.category, "signal"))
                break
    if profile.popularity_weight > 0:
        if paper.paper.upvotes:
            points = profile.popularity_weight * math.log1p(paper.paper.upvotes)
            found.append(
                Match(
                    f"{paper.paper.upvotes} upvotes",
                    "popularity",
                    paper.paper.upvotes,
                    round(points, 4),
                    "signal",
                )
            )
        if paper.paper.github_stars:
            points = (
                profile.popularity_weight
                * weights.stars_share
                * math.log1p(paper.paper.github_stars)
            )
            found.append(
                Match(
                    f"{paper.paper.github_stars} GitHub stars",
                    "popularity",
                    paper.paper.github_stars,
                    round(points, 4),
                    "signal",
                )
            )
    if liked and similarity > LIKED_THRESHOLD:
        found.append(
            Match(
                liked[closest].paper.title,
                "liked",
                1,
                round(weights.liked * similarity, 4),
                "signal",
            )
        )
    return found
