"""Where in a text the terms that scored a paper occur, for highlighting them."""

from __future__ import annotations

from collections.abc import Iterable

from digest.rank.corpus import token_matches
from digest.rank.profile import TermSyntaxError, parse_term
from digest.rank.text import tokens


def highlight_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of ``text`` where any of ``terms`` matches, merged and in order.

    Uses the ranking's own tokens and matching rules, so what is highlighted is exactly
    what was scored.
    """
    found = tokens(text)
    spans: list[tuple[int, int]] = []
    for spec in set(terms):
        try:
            term = parse_term(spec)
        except TermSyntaxError:
            continue
        n = len(term.keys)
        for start in range(len(found) - n + 1):
            window = found[start : start + n]
            if all(token_matches(term, i, t.word, t.stem) for i, t in enumerate(window)):
                spans.append((window[0].start, window[-1].end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
