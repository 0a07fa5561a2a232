"""The keywords of a run's readers, each worked out once, and their interests as arrays.

A keyword scores through its parts (see rank.parts): rows of the term table, each with a
weight, a kind and, for a single word, the word. Thousands of readers share keywords
("diffusion", "agents"), so each distinct keyword is registered once per term table,
an interest is a list of keyword numbers, and the parts of a whole batch of interests
are gathered with array indexing when the batch is scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from digest.rank.parts import KINDS, keyword_parts
from digest.rank.profile import Interest, Term

if TYPE_CHECKING:
    from digest.rank.expand import Related
    from digest.rank.score import Weights

RELATED = KINDS.index("related")
RELATED_TEXT = "\x00related"  # no keyword's text: keywords have no control characters


def ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``starts[i] .. starts[i] + sizes[i]`` for every i, end to end."""
    offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) + offsets


@dataclass(frozen=True, slots=True)
class Parts:
    """Parts of many interests: interest ``r`` owns ``ptr[r]:ptr[r+1]`` of the others."""

    ptr: np.ndarray
    term: np.ndarray  # the term table's row
    weight: np.ndarray
    kind: np.ndarray  # index into parts.KINDS
    text: np.ndarray  # the keyword's text, as its number in Keywords.texts
    keyword: np.ndarray  # the keyword's number in Keywords
    bit: np.ndarray  # a word's bit among its keyword's words, 0 for other parts
    via: np.ndarray  # a word's text (objects), "" for other parts

    @property
    def rows(self) -> int:
        return len(self.ptr) - 1


class Keywords:
    """Every keyword a term table has scored, numbered, with its parts as flat columns."""

    def __init__(self, add_term: Callable[[Term], int], weights: Weights) -> None:
        self._add_term = add_term  # a part's term -> its row in the term table
        self._weights = weights
        self._numbers: dict[Term, int] = {}
        self._text_numbers: dict[str, int] = {}
        self.texts: list[str] = []  # keyword texts, as a Match names them
        self._ptr = [0]
        self._term: list[int] = []
        self._weight: list[float] = []
        self._kind: list[int] = []
        self._via: list[str] = []
        self._bit: list[int] = []
        self._text: list[int] = []  # per keyword
        self._words: list[list[str]] = []  # per keyword: the words it also scores alone
        self._named: dict[tuple[int, int], str] = {}
        self._columns: tuple[np.ndarray, ...] | None = None

    def number(self, keyword: Term) -> int:
        """The keyword's number (registered, and its parts worked out, on first use)."""
        found = self._numbers.get(keyword)
        if found is None:
            found = self._numbers[keyword] = self._register(keyword)
        return found

    def _register(self, keyword: Term) -> int:
        parts = keyword_parts(keyword, self._weights)
        words = [part.via for part in parts if part.via]
        self._term += [self._add_term(part.term) for part in parts]
        self._weight += [part.weight for part in parts]
        self._kind += [part.kind for part in parts]
        self._via += [part.via for part in parts]
        self._bit += [1 << words.index(part.via) if part.via else 0 for part in parts]
        self._ptr.append(len(self._term))
        text = self._text_numbers.get(keyword.text)
        if text is None:
            text = self._text_numbers[keyword.text] = len(self.texts)
            self.texts.append(keyword.text)
        self._text.append(text)
        self._words.append(words)
        self._columns = None
        return len(self._words) - 1

    def related(self, term: Term) -> tuple[int, int]:
        """A related word's term row, and the text number all related words share (they
        are explained together, as one Match per field; see rank.matches)."""
        text = self._text_numbers.get(RELATED_TEXT)
        if text is None:
            text = self._text_numbers[RELATED_TEXT] = len(self.texts)
            self.texts.append("related")
        return self._add_term(term), text

    def parts(self, numbers: np.ndarray, ptr: np.ndarray) -> Parts:
        """The parts of interests made of keywords ``numbers``, interest ``r`` owning
        ``numbers[ptr[r]:ptr[r+1]]``."""
        if self._columns is None:
            self._columns = (
                np.array(self._ptr, dtype=np.int64),
                np.array(self._term, dtype=np.int64),
                np.array(self._weight, dtype=np.float64),
                np.array(self._kind, dtype=np.int64),
                np.array(self._bit, dtype=np.int64),
                np.array(self._via, dtype=object),
                np.array(self._text, dtype=np.int64),
            )
        starts, term, weight, kind, bit, via, text = self._columns
        sizes = starts[numbers + 1] - starts[numbers]
        at = ranges(starts[numbers], sizes)
        ends = np.concatenate(([0], np.cumsum(sizes)))
        owner = np.repeat(numbers, sizes)
        return Parts(
            ptr=ends[ptr],
            term=term[at],
            weight=weight[at],
            kind=kind[at],
            text=text[owner],
            keyword=owner,
            bit=bit[at],
            via=via[at],
        )

    def words_of(self, number: int, bits: int) -> str:
        """The words of keyword ``number`` whose bits are set, in the keyword's order."""
        key = (number, bits)
        found = self._named.get(key)
        if found is None:
            words = self._words[number]
            found = self._named[key] = " ".join(w for i, w in enumerate(words) if bits >> i & 1)
        return found


class InterestParts:
    """Many readers' interests, one row each, as keyword numbers; see ``Keywords.parts``."""

    def __init__(self, keywords: Keywords) -> None:
        self.keywords = keywords
        self._ptr = [0]
        self._numbers: list[int] = []
        self._parts: Parts | None = None
        # Related words (rank.expand), as parts of their own: row, term row, weight, text.
        self._related: list[tuple[int, int, float, int, str]] = []

    @property
    def rows(self) -> int:
        return len(self._ptr) - 1

    def add_interest(self, interest: Interest, related: Related | None = None) -> None:
        number = self.keywords.number
        row = self.rows
        self._numbers += [number(keyword) for keyword in interest.keywords]
        self._ptr.append(len(self._numbers))
        if related is not None:
            for term, weight in zip(related.terms, related.weights, strict=True):
                term_row, text = self.keywords.related(term)
                self._related.append((row, term_row, weight, text, term.text))
        self._parts = None

    def arrays(self) -> Parts:
        if self._parts is None:
            parts = self.keywords.parts(
                np.array(self._numbers, dtype=np.int64), np.array(self._ptr, dtype=np.int64)
            )
            self._parts = _with_related(parts, self._related) if self._related else parts
        return self._parts


def _with_related(parts: Parts, related: list[tuple[int, int, float, int, str]]) -> Parts:
    """``parts`` with each row's related words after its keywords' parts."""
    rows, terms, weights, texts, words = zip(*related, strict=True)
    n = len(rows)
    owner = np.concatenate((np.repeat(np.arange(parts.rows), np.diff(parts.ptr)), rows))
    order = np.argsort(owner, kind="stable")
    ptr = np.searchsorted(owner[order], np.arange(parts.rows + 1))

    def joined(old: np.ndarray, new: object, dtype: object) -> np.ndarray:
        return np.concatenate((old, np.array(new, dtype=dtype)))[order]

    return Parts(
        ptr=ptr,
        term=joined(parts.term, terms, np.int64),
        weight=joined(parts.weight, weights, np.float64),
        kind=joined(parts.kind, [RELATED] * n, np.int64),
        text=joined(parts.text, texts, np.int64),
        keyword=joined(parts.keyword, [0] * n, np.int64),
        bit=joined(parts.bit, [0] * n, np.int64),
        via=joined(parts.via, words, object),
    )
