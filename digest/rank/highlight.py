"""Where in a text the terms that scored a paper occur, for highlighting them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from digest.rank.corpus import phrase_starts
from digest.rank.profile import Term, TermSyntaxError, parse_term
from digest.rank.text import Token, tokens


@lru_cache(maxsize=4096)
def _analysed(text: str) -> tuple[list[Token], list[str], list[str]]:
    # The same abstract is highlighted for many readers: tokenise it once.
    found = tokens(text)
    return found, [t.word for t in found], [t.stem for t in found]


def highlight_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of ``text`` where any of ``terms`` matches, merged and in order.

    Uses the ranking's own tokens and matching rules, so what is highlighted is exactly
    what was scored.
    """
    found, words_, stems = _analysed(text)
    spans: list[tuple[int, int]] = []
    for spec in set(terms):
        term = _term(spec)
        if term is None:
            continue
        n = len(term.keys)
        for start in phrase_starts(term, words_, stems):
            spans.append((found[start].start, found[start + n - 1].end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _term(spec: str) -> Term | None:
    try:
        return parse_term(spec)
    except TermSyntaxError:
        return None
