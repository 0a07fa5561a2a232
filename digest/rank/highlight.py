"""Where in a text the terms that scored a paper occur, for highlighting them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from digest.rank.profile import Term, TermSyntaxError, parse_term
from digest.rank.text import NO_CLASH, Token, clashing_form, form_of, root_of, tokens


class _Analysed:
    """A text's tokens, with where each word and each stem occurs, and the spans found
    so far for each term (the same abstract is marked for many readers)."""

    __slots__ = ("forms", "marked", "spans", "stems", "tokens", "words")

    def __init__(self, text: str) -> None:
        self.tokens: list[Token] = tokens(text)
        self.words: dict[str, list[int]] = {}
        self.stems: dict[str, list[int]] = {}
        self.spans: dict[str, tuple[tuple[int, int], ...]] = {}
        # Stems by their root, each place with its form (text.FORMS): a bare key's places
        # are its root's, a marked key's the same less the clashing form, found once.
        self.forms: list[int] = []
        self.marked: dict[str, list[int]] = {}
        for i, token in enumerate(self.tokens):
            self.words.setdefault(token.word, []).append(i)
            root, form = _split(token.stem)
            self.stems.setdefault(root, []).append(i)
            self.forms.append(form)

    def spans_of(self, spec: str) -> tuple[tuple[int, int], ...]:
        """Character spans where the term ``spec`` matches."""
        found = self.spans.get(spec)
        if found is None:
            term = _term(spec)
            last = len(term.keys) - 1 if term else 0
            found = self.spans[spec] = (
                tuple(
                    (self.tokens[s].start, self.tokens[s + last].end)
                    for s in self.phrase_starts(term)
                )
                if term
                else ()
            )
        return found

    def positions(self, term: Term, k: int) -> list[int]:
        """Where the term's ``k``-th key occurs (the comparisons ranking uses)."""
        key = term.keys[k]
        if term.mode == "exact":
            return self.words.get(key, [])
        if term.mode == "prefix" and k == len(term.keys) - 1:
            return sorted(i for word, at in self.words.items() if word.startswith(key) for i in at)
        root, clash = _split_term_key(key)
        if clash == NO_CLASH:
            return self.stems.get(root, [])
        found = self.marked.get(key)
        if found is None:
            forms = self.forms
            found = self.marked[key] = [i for i in self.stems.get(root, ()) if forms[i] != clash]
        return found

    def phrase_starts(self, term: Term) -> list[int]:
        """Token positions where the whole phrase begins."""
        starts = self.positions(term, 0)
        for k in range(1, len(term.keys)):
            following = set(self.positions(term, k))
            starts = [s for s in starts if s + k in following]
        return starts


@lru_cache(maxsize=65536)
def _split(key: str) -> tuple[str, int]:
    """A token's stem key as its root and form."""
    return root_of(key), form_of(key)


@lru_cache(maxsize=65536)
def _split_term_key(key: str) -> tuple[str, int]:
    """A term's stem key as its root and the form it must not match (text.clashing_form)."""
    return root_of(key), clashing_form(key)


@lru_cache(maxsize=16384)
def _analysed(text: str) -> _Analysed:
    # The same abstract is highlighted for many readers: analyse it once.
    return _Analysed(text)


def highlight_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of ``text`` where any of ``terms`` matches, merged and in order.

    Uses the ranking's own tokens and matching rules, so what is highlighted is exactly
    what was scored.
    """
    analysed = _analysed(text)
    spans = sorted(span for spec in set(terms) for span in analysed.spans_of(spec))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@lru_cache(maxsize=8192)
def _term(spec: str) -> Term | None:
    try:
        return parse_term(spec)
    except TermSyntaxError:
        return None
