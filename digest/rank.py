"""Rank papers against a subscriber's keyword profile and explain every match.

Pure: a profile and papers in, scored papers out, no I/O, no clock. Keywords and phrases
match whole words in order ("linear attention" matches "Linear-Attention" but not
"nonlinear attention"; "pruning" never matches "pruninglike"); a title match weighs more
than an abstract match; an ``exclude`` term anywhere drops the paper; an ``authors``
entry boosts papers by that author. Ties keep the order papers were first stored in.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.models import Match, Scored, StoredPaper

TITLE_WEIGHT = 3.0
ABSTRACT_WEIGHT = 1.0
AUTHOR_POINTS = 5.0

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword or phrase: its words, as the user wrote them and as matched."""

    text: str
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    keywords: tuple[Term, ...] = ()
    exclude: tuple[Term, ...] = ()
    authors: tuple[str, ...] = ()
    max_papers: int = 20

    @classmethod
    def build(
        cls,
        keywords: Iterable[str] = (),
        exclude: Iterable[str] = (),
        authors: Iterable[str] = (),
        max_papers: int = 20,
    ) -> Profile:
        return cls(
            keywords=tuple(t for t in map(make_term, keywords) if t.words),
            exclude=tuple(t for t in map(make_term, exclude) if t.words),
            authors=tuple(_fold(a) for a in authors if a.strip()),
            max_papers=max_papers,
        )


@dataclass(frozen=True, slots=True)
class Ranking:
    """The digest's papers (best first) and the rest of the candidates, all scored."""

    selected: list[Scored]
    considered: list[Scored]


def make_term(text: str) -> Term:
    """A term from profile text; surrounding quotes are allowed and mean a phrase."""
    cleaned = text.strip().strip('"').strip()
    return Term(text=cleaned, words=tuple(_words(cleaned)))


def rank(profile: Profile, papers: Sequence[StoredPaper]) -> Ranking:
    """Score every paper; keep the best ``max_papers`` that match (all, for an empty profile)."""
    scored: list[tuple[bool, Scored]] = []
    for stored in papers:
        paper = stored.paper
        title, abstract = _words(paper.title), _words(paper.abstract)
        if any(
            _count(term.words, title) or _count(term.words, abstract) for term in profile.exclude
        ):
            scored.append((False, Scored(stored, 0.0)))
            continue
        matches = [*_keyword_matches(profile.keywords, title, abstract)]
        matches += _author_matches(profile.authors, paper.authors)
        score = round(sum(m.points for m in matches), 6)
        eligible = bool(matches) or (not profile.keywords and not profile.authors)
        scored.append((eligible, Scored(stored, score, tuple(matches))))
    order = sorted((item for ok, item in scored if ok), key=lambda s: (-s.score, s.paper.uid))
    selected = order[: profile.max_papers]
    chosen = {item.paper.uid for item in selected}
    considered = [item for _ok, item in scored if item.paper.uid not in chosen]
    return Ranking(selected=selected, considered=considered)


def _keyword_matches(
    keywords: Sequence[Term], title: list[str], abstract: list[str]
) -> Iterable[Match]:
    for term in keywords:
        for field, words, weight in (
            ("title", title, TITLE_WEIGHT),
            ("abstract", abstract, ABSTRACT_WEIGHT),
        ):
            count = _count(term.words, words)
            if count:
                # More mentions count, with diminishing returns: 1, 1.69, 2.10, ...
                points = weight * len(term.words) ** 0.5 * (1 + math.log(count))
                yield Match(term.text, field, count, round(points, 4))


def _author_matches(wanted: Sequence[str], authors: Sequence[str]) -> list[Match]:
    folded = [_fold(a) for a in authors]
    return [
        Match(name, "authors", 1, AUTHOR_POINTS)
        for name in wanted
        if any(name == author or _surname_match(name, author) for author in folded)
    ]


def _surname_match(wanted: str, author: str) -> bool:
    # "LeCun" (one word) matches "Yann LeCun"; full names must match in full.
    return " " not in wanted and author.split(" ")[-1:] == [wanted]


def _count(phrase: tuple[str, ...], words: list[str]) -> int:
    if not phrase or len(phrase) > len(words):
        return 0
    n = len(phrase)
    first = phrase[0]
    return sum(
        1
        for i in range(len(words) - n + 1)
        if _same(first, words[i])
        and all(_same(p, w) for p, w in zip(phrase[1:], words[i + 1 : i + n], strict=True))
    )


def _same(query: str, word: str) -> bool:
    """A word matches itself and its plural ("model" matches "models", "process" "processes")."""
    return word == query or word == query + "s" or word == query + "es"


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def highlight_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of ``text`` where any of ``terms`` matches, merged and in order.

    Uses the same word matching as ranking, so what is highlighted is what was scored.
    """
    tokens = [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
    words = [t[0] for t in tokens]
    spans: list[tuple[int, int]] = []
    for term in {make_term(t).words for t in terms}:
        n = len(term)
        if not n:
            continue
        for i in range(len(words) - n + 1):
            if all(_same(p, w) for p, w in zip(term, words[i : i + n], strict=True)):
                spans.append((tokens[i][1], tokens[i + n - 1][2]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
