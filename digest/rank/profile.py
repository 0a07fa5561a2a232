"""A reader's profile as ranking uses it, parsed from the config's keyword language.

Keyword syntax (one list item each):

- ``mamba``: a word, matched by its stem (``model`` matches ``models``, ``modeling``;
  ``reasoning`` matches ``reasoned``, not ``reasons``: see text.stem_key);
- ``linear attention``: a phrase, its words adjacent and in order, each by stem;
- ``"ViT"`` or ``"kv cache"``: in double quotes, exact words (case-insensitive, no stemming);
- ``quantiz*``: a prefix (the last word of a phrase may be one);
- ``mamba^2`` or ``{ term = "kv cache", weight = 1.5 }``: a weight (default 1).

``"``, ``*`` and ``^`` mean only that, in those places: a term with one elsewhere (an
unterminated quote, ``quant*ization``, ``diffusion^x``) is an error rather than a term
that quietly matches something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from digest.rank.text import STOP_WORDS, fold, stem_key, words

Mode = Literal["stem", "exact", "prefix"]
_WEIGHT = re.compile(r"\^(\d+(?:\.\d+)?)$")
PROXIMITY_WINDOW = 4  # per word: "token pruning" matches both words within 8 tokens
MAX_WORDS = 16  # a keyword, not a sentence (explanations name matched words as bits)


class TermSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword or phrase, ready to match."""

    text: str  # as the reader wrote it (quotes and * kept, weight dropped): parse_term(text) again
    words: tuple[str, ...]  # folded words
    mode: Mode = "stem"
    weight: float = 1.0
    window: int = 0  # 0: words adjacent and in order; N: all within N tokens, any order
    # What each token is compared with: stems, or exact words (a prefix for the last).
    keys: tuple[str, ...] = field(init=False, compare=False, repr=False)
    # Terms that match the same tokens share counts (across readers, too).
    identity: tuple[str, tuple[str, ...], int] = field(init=False, compare=False, repr=False)
    # Terms are dictionary keys in every reader's ranking: hashed once, not per lookup.
    _hash: int = field(init=False, compare=False, repr=False)

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Term], tuple[object, ...]]:
        # Rebuilt from its fields: a string's hash differs from one process to another.
        return Term, (self.text, self.words, self.mode, self.weight, self.window)

    def __post_init__(self) -> None:
        if self.mode == "stem":
            keys = tuple(stem_key(w) for w in self.words)
        elif self.mode == "prefix":
            keys = (*(stem_key(w) for w in self.words[:-1]), self.words[-1])
        else:
            keys = self.words
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "identity", (self.mode, keys, self.window))
        object.__setattr__(
            self, "_hash", hash((self.text, self.words, self.mode, self.weight, self.window))
        )

    def parts(self) -> list[tuple[str, Term]]:
        """What a keyword is scored by, as (kind, term) (see ``_parts``; cached)."""
        return _parts(self)


@lru_cache(maxsize=65536)
def _parts(term: Term) -> list[tuple[str, Term]]:
    """What a keyword is scored by, as (kind, term).

    A single word is itself. An unquoted phrase is scored like a sequential dependence
    model: the exact phrase, its words near each other in any order, and each word on its
    own, so "token pruning" also finds "pruning the visual tokens", ranked below the exact
    phrase. A quoted phrase means exactly that phrase.
    """
    if len(term.words) == 1 or term.mode == "exact":
        return [("phrase", term)]
    last = len(term.words) - 1
    prefix = term.mode == "prefix"
    singles = [
        Term(
            text=word + ("*" if prefix and i == last else ""),
            words=(word,),
            mode="prefix" if prefix and i == last else "stem",
        )
        for i, word in enumerate(term.words)
        if word not in STOP_WORDS or (prefix and i == last)
    ]
    near = Term(term.text, term.words, term.mode, window=PROXIMITY_WINDOW * len(term.words))
    return [("phrase", term), ("near", near), *(("word", single) for single in singles)]


def parse_term(spec: str | Mapping[str, Any]) -> Term:
    if isinstance(spec, str):
        return _parse_text(spec)
    return _parse(spec)


@lru_cache(maxsize=65536)
def _parse_text(spec: str) -> Term:
    return _parse(spec)


def _parse(spec: str | Mapping[str, Any]) -> Term:
    """A Term from a config entry: a string in the keyword syntax, or a {term, weight} table."""
    weight = 1.0
    if isinstance(spec, Mapping):
        text = str(spec.get("term", ""))
        weight = float(spec.get("weight", 1.0))
    else:
        text = spec
    text = text.strip()
    if match := _WEIGHT.search(text):
        if isinstance(spec, Mapping):
            raise TermSyntaxError(
                f"{text!r}: give the weight once, as weight = {match.group(1)} in the table"
            )
        weight = float(match.group(1))
        text = text[: match.start()].rstrip()
    if "^" in text:
        raise TermSyntaxError(
            f"{text!r}: a weight is ^ and a number at the end of the term, such as mamba^2"
        )
    mode: Mode = "stem"
    body = text
    if len(body) >= 2 and body[0] == body[-1] == '"':
        body, mode = body[1:-1].strip(), "exact"
    if '"' in body:
        raise TermSyntaxError(
            f'{text!r}: quotes go around the whole term, as "kv cache"; this one has a '
            "quote left open or inside it"
        )
    if body.endswith("*"):
        if mode == "exact":
            raise TermSyntaxError(f"{text!r}: a quoted term cannot end with a wildcard")
        body, mode = body[:-1].rstrip(), "prefix"
    if "*" in body:
        raise TermSyntaxError(f"{text!r}: a wildcard * goes only at the end, as quantiz*")
    found = tuple(words(body))
    if mode == "prefix" and len(found[-1] if found else "") < 3:
        raise TermSyntaxError(f"{spec!r}: a wildcard needs at least 3 letters before the *")
    if not found:
        raise TermSyntaxError(f"{spec!r} has no words to match")
    if len(found) > MAX_WORDS:
        raise TermSyntaxError(
            f"{spec!r} has {len(found)} words; a keyword has at most {MAX_WORDS} words "
            "(split it into several keywords)"
        )
    if weight <= 0:
        raise TermSyntaxError(f"{spec!r}: the weight must be above 0")
    return Term(text=text, words=found, mode=mode, weight=weight)


def parse_terms(specs: Iterable[str | Mapping[str, Any]]) -> tuple[Term, ...]:
    return tuple(parse_term(spec) for spec in specs)


@dataclass(frozen=True, slots=True)
class Interest:
    """A named group of keywords: the sections of one digest. The unnamed group is None."""

    name: str | None
    keywords: tuple[Term, ...]
    exclude: tuple[Term, ...] = ()
    require: tuple[Term, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    interests: tuple[Interest, ...] = (Interest(None, ()),)
    exclude: tuple[Term, ...] = ()
    require: tuple[Term, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    category_mode: Literal["boost", "keep"] = "boost"
    sources: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    popularity_weight: float = 0.0
    min_score: float = 0.0
    max_papers: int = 20

    @classmethod
    def build(
        cls,
        keywords: Iterable[str | Mapping[str, Any]] = (),
        *,
        interests: Iterable[tuple[str, Iterable[str | Mapping[str, Any]]]] = (),
        exclude: Iterable[str | Mapping[str, Any]] = (),
        require: Iterable[str | Mapping[str, Any]] = (),
        authors: Iterable[str] = (),
        **options: Any,
    ) -> Profile:
        """A profile from plain values (the config, a test, the relevance harness)."""
        groups = [Interest(name, parse_terms(terms)) for name, terms in interests]
        top = parse_terms(keywords)
        if top or not groups:
            groups.insert(0, Interest(None, top))
        return cls(
            interests=tuple(groups),
            exclude=parse_terms(exclude),
            require=parse_terms(require),
            authors=tuple(" ".join(fold(a).split()) for a in authors if a.strip()),
            **options,
        )

    @property
    def takes_everything(self) -> bool:
        """No keywords and no authors: every new paper is wanted."""
        return not any(i.keywords for i in self.interests) and not self.authors and not self.liked
