"""Score candidate papers for one profile: BM25F over title and abstract, plus signals.

Pure: a profile, the analysed corpus and the candidates in; a Ranking out. For each term
of each interest, the field counts are combined BM25F-style (the title weighs more than
the abstract, each normalised by its length), saturated, and scaled by the term's weight
and its IDF over the corpus. A paper belongs to the interest it scores best in. Authors,
categories, popularity and similarity to liked papers add points of their own. Every
point is recorded as a Match, so the digest can say exactly why a paper was chosen.
Ties are broken by the order papers were first stored in: the same inputs always give
the same order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.models import Match, Scored, StoredPaper
from digest.rank.corpus import FIELDS, Corpus
from digest.rank.profile import Profile, Term
from digest.rank.similar import liked_similarity
from digest.rank.text import fold


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


@dataclass(frozen=True, slots=True)
class Ranking:
    """The digest's papers (best first) and the rest of the candidates, all scored."""

    selected: list[Scored]
    considered: list[Scored]


@dataclass(slots=True)
class _TermScore:
    keyword: Term  # what the reader wrote
    term: Term  # the part scored: the phrase itself, its words near each other, or one word
    kind: str
    points: np.ndarray  # per candidate
    shares: dict[str, np.ndarray]  # per field, summing to 1 where points > 0
    counts: dict[str, np.ndarray]


def rank(
    profile: Profile,
    corpus: Corpus,
    candidates: Sequence[StoredPaper],
    liked: Sequence[StoredPaper] = (),
    weights: Weights = DEFAULT_WEIGHTS,
) -> Ranking:
    """Score every candidate; keep the best ``max_papers`` that are eligible."""
    if not candidates:
        return Ranking([], [])
    rows = np.array([corpus.row[p.uid] for p in candidates], dtype=np.int64)
    w = weights
    norms = {
        f: 1.0 - w.b(f) + w.b(f) * corpus.fields[f].lengths[rows] / corpus.average_length[f]
        for f in FIELDS
    }
    per_interest = [
        [
            _score_term(keyword, part, kind, corpus, rows, norms, w)
            for keyword in interest.keywords
            for kind, part in keyword.parts()
        ]
        for interest in profile.interests
    ]
    totals = np.vstack(
        [sum((t.points for t in scores), np.zeros(len(rows))) for scores in per_interest]
    )
    for k, interest in enumerate(profile.interests):
        blocked = _any_match(interest.exclude, corpus, rows)
        if interest.require:
            blocked |= ~_any_match(interest.require, corpus, rows)
        totals[k][blocked] = -np.inf if len(profile.interests) > 1 else 0.0
    best = np.argmax(totals, axis=0)

    excluded = _any_match(profile.exclude, corpus, rows)
    if profile.require:
        excluded |= ~_any_match(profile.require, corpus, rows)
    similarity, closest = liked_similarity(corpus, candidates, liked)

    selected_pool: list[Scored] = []
    considered: list[Scored] = []
    matched = [_keyword_matched(scores, len(rows)) for scores in per_interest]
    for i, paper in enumerate(candidates):
        interest = profile.interests[int(best[i])]
        matches = _keyword_matches(per_interest[int(best[i])], i)
        signals = _signal_matches(profile, paper, similarity[i], closest[i], liked, w)
        matches += signals
        score = round(sum(m.points for m in matches), 4)
        scored = Scored(paper, score, tuple(matches), interest.name)
        relevant = bool(matched[int(best[i])][i]) or any(
            m.field in ("authors", "liked") for m in signals
        )
        if _eligible(profile, paper, score, excluded[i], relevant):
            selected_pool.append(scored)
        else:
            considered.append(
                Scored(paper, score if not excluded[i] else 0.0, scored.matches, interest.name)
            )
    selected_pool.sort(key=lambda s: (-s.score, s.paper.uid))
    selected = _by_section(selected_pool[: profile.max_papers])
    considered = selected_pool[profile.max_papers :] + considered
    considered.sort(key=lambda s: s.paper.uid)
    return Ranking(selected, considered)


def _by_section(best_first: list[Scored]) -> list[Scored]:
    """Digest order: papers grouped by interest, groups in the order of their best paper."""
    groups: dict[str | None, list[Scored]] = {}
    for item in best_first:
        groups.setdefault(item.section, []).append(item)
    return [item for group in groups.values() for item in group]


def _score_term(
    keyword: Term,
    term: Term,
    kind: str,
    corpus: Corpus,
    rows: np.ndarray,
    norms: dict[str, np.ndarray],
    w: Weights,
) -> _TermScore:
    """BM25F: field counts weighted and length-normalised, then saturated once."""
    counts = corpus.counts(term)
    raw = {f: counts.by_field[f][rows] for f in FIELDS}
    parts = {f: w.field(f) * raw[f] / norms[f] for f in FIELDS}
    combined = sum(parts.values())
    weight = keyword.weight * w.part(keyword, kind)
    points = weight * corpus.idf(term) * combined * (w.k1 + 1) / (combined + w.k1)
    safe = np.where(combined > 0, combined, 1.0)
    return _TermScore(keyword, term, kind, points, {f: parts[f] / safe for f in FIELDS}, raw)


def _any_match(terms: Sequence[Term], corpus: Corpus, rows: np.ndarray) -> np.ndarray:
    hit = np.zeros(len(rows), dtype=bool)
    for term in terms:
        hit |= corpus.counts(term).anywhere[rows] > 0
    return hit


def _keyword_matches(scores: list[_TermScore], i: int) -> list[Match]:
    """One Match per keyword, field and way of matching (a keyword listed twice: once)."""
    merged: dict[tuple[str, str, str, str], tuple[int, float]] = {}
    for score in scores:
        total = float(score.points[i])
        if total <= 0:
            continue
        via = score.term.text if score.kind == "word" else ""
        for f in FIELDS:
            count = int(score.counts[f][i])
            if count:
                key = (score.keyword.text, f, score.kind, via)
                _, points = merged.get(key, (0, 0.0))
                merged[key] = (count, points + total * float(score.shares[f][i]))
    return [
        Match(term, f, count, round(points, 4), kind, via)
        for (term, f, kind, via), (count, points) in merged.items()
    ]


def _signal_matches(
    profile: Profile,
    paper: StoredPaper,
    similarity: float,
    closest: int,
    liked: Sequence[StoredPaper],
    w: Weights,
) -> list[Match]:
    found: list[Match] = []
    authors = [" ".join(fold(a).split()) for a in paper.paper.authors]
    for wanted in profile.authors:
        if any(
            wanted == a or (" " not in wanted and a.rsplit(" ", 1)[-1] == wanted) for a in authors
        ):
            found.append(Match(wanted, "authors", 1, w.author, "signal"))
    if profile.category_mode == "boost":
        wanted_categories = {c.lower() for c in profile.categories}
        for category in paper.paper.categories:
            if category.lower() in wanted_categories:
                found.append(Match(category, "category", 1, w.category, "signal"))
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
                profile.popularity_weight * w.stars_share * math.log1p(paper.paper.github_stars)
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
    if liked and similarity > 0.05:
        title = liked[closest].paper.title
        found.append(Match(title, "liked", 1, round(w.liked * similarity, 4), "signal"))
    return found


def _keyword_matched(scores: list[_TermScore], size: int) -> np.ndarray:
    """Papers where some keyword really matched: as a phrase, or with its words near each
    other. Scattered words of a phrase ("space" here, "model" there) add to the score but
    do not earn a place in the digest on their own."""
    ok = np.zeros(size, dtype=bool)
    for score in scores:
        if score.kind != "word":
            ok |= score.points > 0
    return ok


def _eligible(
    profile: Profile, paper: StoredPaper, score: float, excluded: bool, relevant: bool
) -> bool:
    if excluded:
        return False
    if profile.sources and not set(profile.sources) & set(paper.paper.sources):
        return False
    if profile.category_mode == "keep" and profile.categories and paper.paper.categories:
        wanted = {c.lower() for c in profile.categories}
        if not any(c.lower() in wanted for c in paper.paper.categories):
            return False
    if profile.takes_everything:
        return score >= profile.min_score
    return relevant and score > max(profile.min_score, 0.0)
