"""Semantic matching: blend a lexical Ranking with closeness in meaning, and choose again.

Pure: a Ranking, the profile, unit vectors of its interests' queries and of the candidates
in; a Ranking out. One matrix product gives every candidate's cosine similarity to every
query; a paper is as close as its closest interest.

Both scores are put on one scale before they are blended, so that ``weight`` means the
same for every profile, however many keywords it has: the lexical score as a share of
the best candidate's, and the similarity as a share of the way from the candidates'
median (what an unrelated paper of the day scores) to the closest one. The blend is
``(1 - weight) * lexical + weight * meaning``; it is kept in lexical points (divided by
``(1 - weight)`` and times the best lexical score), so the meaning adds one Match of
points to a paper's explanation and every other point stays as it was.

A paper with no keyword can now be chosen: when it is close in meaning to one of the
interests (a cosine of ``MIN_SIMILARITY`` or more) and nothing of the profile keeps it
out (exclusions, requirements, sources, categories kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from digest.models import Match, Scored, StoredPaper
from digest.rank.profile import Profile
from digest.rank.score import BELOW_MIN_SCORE, Ranking
from digest.rank.table import TermTable

MIN_SIMILARITY = 0.35  # a cosine below this is a different topic for MiniLM-sized encoders
MEANING_FIELD = "meaning"


@dataclass(frozen=True, slots=True)
class Meaning:
    """What the blend needs besides the Ranking, for one reader.

    ``queries``: one unit row per interest of the profile (zeros where an interest has no
    query); ``labels``: what each query says, for explanations; ``papers``: one unit row
    per candidate; ``blocked``: candidates x interests, where the profile keeps a paper
    out of an interest whatever it means (see ``blocked_by``).
    """

    queries: np.ndarray
    labels: tuple[str, ...]
    papers: np.ndarray
    blocked: np.ndarray
    weight: float


def blend(ranking: Ranking, profile: Profile, meaning: Meaning) -> Ranking:
    """The Ranking with meaning blended in and the digest's papers chosen again."""
    n = len(ranking.candidates)
    if n == 0 or meaning.weight <= 0 or not meaning.queries.any():
        return ranking
    similarity = meaning.papers @ meaning.queries.T  # candidates x interests
    closest = np.argmax(similarity, axis=1)
    cosine = similarity[np.arange(n), closest]
    lexical = np.asarray(ranking.scores, dtype=np.float64)
    scale = float(lexical.max()) if lexical.max() > 0 else 1.0
    points = np.round(meaning.weight / (1 - meaning.weight) * scale * _spread(cosine), 4)
    scores = np.round(lexical + points, 4)
    close = (cosine >= MIN_SIMILARITY) & ~meaning.blocked[np.arange(n), closest]
    eligible = np.asarray(ranking.eligible, dtype=bool) | close
    if not profile.takes_everything:
        eligible &= scores > max(profile.min_score, 0.0)
    chosen = np.flatnonzero(eligible)
    uids = np.array([p.uid for p in ranking.candidates], dtype=np.int64)
    order = chosen[np.lexsort((uids[chosen], -scores[chosen]))][: profile.max_papers]
    explain = _Explainer(ranking, profile, meaning, points, closest)
    left_out = np.where(eligible, 0, ranking.left_out).astype(np.int8)
    left_out[~eligible & (left_out == 0)] = BELOW_MIN_SCORE  # met the keywords' tests
    return Ranking(
        _by_section(explain(order.tolist())), ranking.candidates, scores, eligible, explain,
        left_out=left_out, floors=ranking.floors,
    )  # fmt: skip


def _spread(cosine: np.ndarray) -> np.ndarray:
    """Similarities as a share of the way from the day's median to the closest paper."""
    floor = float(np.median(cosine)) if len(cosine) > 2 else 0.0
    top = float(cosine.max())
    if top - floor < 1e-6:
        return np.clip(cosine, 0.0, 1.0)
    return np.clip((cosine - floor) / (top - floor), 0.0, 1.0)


class _Explainer:
    """Scored papers of one reader: their lexical matches, plus the meaning's points."""

    def __init__(
        self,
        ranking: Ranking,
        profile: Profile,
        meaning: Meaning,
        points: np.ndarray,
        closest: np.ndarray,
    ) -> None:
        self.ranking, self.profile, self.meaning = ranking, profile, meaning
        self.points, self.closest = points, closest
        self.kept = {item.paper.uid: item for item in ranking.selected}
        explain: Callable[[list[int]], list[Scored]] | None = ranking._explain
        self.lexical = explain or (lambda indices: [])

    def __call__(self, indices: Sequence[int]) -> list[Scored]:
        candidates: Sequence[StoredPaper] = self.ranking.candidates
        others = [i for i in indices if candidates[i].uid not in self.kept]
        found = dict(zip(others, self.lexical(others), strict=False))
        return [self._scored(i, self.kept.get(candidates[i].uid) or found.get(i)) for i in indices]

    def _scored(self, i: int, lexical: Scored | None) -> Scored:
        paper = self.ranking.candidates[i]
        matches = lexical.matches if lexical else ()
        section = lexical.section if lexical and lexical.matches else None
        k = int(self.closest[i])
        if section is None:
            section = self.profile.interests[k].name
        points = float(self.points[i])
        if points > 0:
            label = f"close in meaning to: {self.meaning.labels[k]}"
            matches = (*matches, Match(label, MEANING_FIELD, 1, points, "phrase"))
        return Scored(paper, round(sum(m.points for m in matches), 4), tuple(matches), section)


def _by_section(best_first: list[Scored]) -> list[Scored]:
    """Digest order: papers grouped by interest, groups in the order of their best paper."""
    groups: dict[str | None, list[Scored]] = {}
    for item in best_first:
        groups.setdefault(item.section, []).append(item)
    return [item for group in groups.values() for item in group]


def blocked_by(profile: Profile, table: TermTable) -> np.ndarray:
    """candidates x interests: where the profile keeps a paper out of an interest whatever
    it means (the reader's and the interest's exclusions and requirements, sources, the
    categories it keeps)."""
    candidates = table.candidates
    out = table.any_of(profile.exclude)
    if profile.require:
        out |= ~table.any_of(profile.require)
    if profile.sources:
        wanted = set(profile.sources)
        out |= np.array([not (wanted & set(p.paper.sources)) for p in candidates], dtype=bool)
    categories = {c.lower() for c in profile.categories}
    if profile.category_mode == "keep" and categories:
        out |= np.array(
            [
                bool(p.paper.categories)
                and not categories & {c.lower() for c in p.paper.categories}
                for p in candidates
            ],
            dtype=bool,
        )
    blocked = np.repeat(out[:, None], len(profile.interests), axis=1)
    for k, interest in enumerate(profile.interests):
        blocked[:, k] |= table.any_of(interest.exclude)
        if interest.require:
            blocked[:, k] |= ~table.any_of(interest.require)
    return blocked


def _outside(paper: StoredPaper, categories: set[str]) -> bool:
    """A paper with categories, none of them kept (one without any is not known outside)."""
    own = {c.lower() for c in paper.paper.categories}
    return bool(own) and not own & categories
