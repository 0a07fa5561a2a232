"""The ways a keyword scores (its parts), with the weight each gets.

A single word or a quoted phrase is one part; an unquoted phrase is three ways of
matching (see Term.parts): the phrase, its words near each other, each word alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from digest.rank.profile import Term

if TYPE_CHECKING:
    from digest.rank.score import Weights

KINDS = ("phrase", "near", "word", "related")  # strongest first; related: see rank.expand


@dataclass(frozen=True, slots=True)
class Part:
    """One way a keyword scores: its phrase, its words near each other, or one word."""

    term: Term  # what is matched
    kind: int  # index into KINDS
    weight: float
    via: str  # for a single word: the word


@lru_cache(maxsize=65536)
def keyword_parts(keyword: Term, weights: Weights) -> tuple[Part, ...]:
    return tuple(
        Part(term, KINDS.index(kind), keyword.weight * weights.part(keyword, kind),
             term.text if kind == "word" else "")
        for kind, term in keyword.parts()
    )  # fmt: skip
