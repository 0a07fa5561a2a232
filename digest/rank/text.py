"""Text analysis shared by ranking and highlighting: one tokenizer, so what is scored is
exactly what is highlighted.

A token is a run of letters and digits after Unicode NFKC normalisation and case folding;
its stem comes from the Snowball English stemmer ("quantization", "quantized" and
"quantizing" all stem to "quantiz"), and an acronym's plural is its singular ("LLMs" is
"LLM", which Snowball leaves apart). Hyphens and punctuation separate tokens, so
"linear-attention" is two tokens and "pruninglike" is one. Web addresses
(``https://github.com/org/mamba-kernels``, ``www.example.org``) are not words of the text:
they are blanked out before tokenising, so they neither score nor get highlighted.

Snowball also gives "reasoning" and "reasons" one stem, though an -ing nominal and a
plural noun are seldom the same thing ("LLM reasoning" against "for two reasons"). So a
token's key is its stem marked with its form (``reason+ing``, ``reason+s``, or the bare
stem for every other form), and a key matches the keys ``compatible`` names: the two
marked forms each match themselves and the bare stem, never each other.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

import snowballstemmer

_WORD = re.compile(r"\w+")
_URL = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)

# Words too common to mean anything on their own (inside a phrase they still count).
STOP_WORDS = frozenset(
    (
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
        "is", "it", "its", "of", "on", "or", "our", "that", "the", "this", "to", "we",
        "which", "with", "via", "vs",
    )
)  # fmt: skip


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of one folded word (cached: vocabularies repeat a lot), and the
    singular of an acronym's plural, which Snowball keeps whole."""
    root = _stemmer().stemWord(word)
    if root == word and _acronym_plural(word):
        return word[:-1]
    return root


_VOWELS = frozenset("aeiouy")


def _acronym_plural(word: str) -> bool:
    """Whether a folded word is an acronym with a plural s: "llms", "gnns", "ssms" (no
    vowel before the s) or "pdes", "gpus" (a short one ending in its only vowel).

    Snowball drops a plural s only after a syllable with a vowel, so "LLMs" would never
    match a reader's "LLM". No English word is spelt so; a longer word ending in a vowel
    and s ("virus", "focus") is left alone, since its s is not a plural.
    """
    if len(word) < 3 or word[-1] != "s" or not word.isalpha():
        return False
    body = word[:-1]
    if not _VOWELS.intersection(body):
        return True
    return len(body) <= 3 and body[-1] in _VOWELS and not _VOWELS.intersection(body[:-1])


@lru_cache(maxsize=200_000)
def stem_key(word: str) -> str:
    """The stem of one folded word, marked when the word is an -ing form or a plural."""
    root = stem(word)
    if root == word:
        return root
    if word.endswith(("ing", "ings")) and not root.endswith("ing"):
        return root + "+ing"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return root + "+s"
    return root


def compatible(key: str) -> tuple[str, ...]:
    """The token keys a term's stem key matches: a bare stem matches every form of it, an
    -ing form or a plural matches itself and the bare stem. (The relation is symmetric:
    these are also the term keys that match a token of this key.)"""
    root, marked, _form = key.partition("+")
    return (key, root) if marked else (root, root + "+ing", root + "+s")


FORMS = ("", "ing", "s")  # a stem key's form: bare, -ing form, plural
NO_CLASH = -1


def root_of(key: str) -> str:
    """A stem key without its form: the stem all its forms share."""
    return key.partition("+")[0]


def form_of(key: str) -> int:
    """A stem key's form, as its place in FORMS."""
    return FORMS.index(key.partition("+")[2])


@lru_cache(maxsize=200_000)
def clashing_form(key: str) -> int:
    """The form (place in FORMS) of the tokens a term's stem key must not match: an -ing
    form never matches a plural nor a plural an -ing form; a bare stem clashes with none
    (NO_CLASH). The same rule as ``compatible``, for filtering a stem's occurrences."""
    form = form_of(key)
    return NO_CLASH if form == 0 else 3 - form


def without_urls(text: str) -> str:
    """``text`` with every web address blanked out by spaces (offsets are kept)."""
    lowered = text.lower() if "W" in text else text  # the cheap test first: most have none
    if "://" not in text and "www." not in lowered:
        return text
    return _URL.sub(lambda match: " " * len(match.group()), text)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def words(text: str) -> list[str]:
    """Folded tokens of ``text`` in order, web addresses left out."""
    return _WORD.findall(fold(without_urls(text)))


class Token(NamedTuple):
    word: str  # folded
    stem: str  # its stem key (see stem_key)
    start: int  # character offsets in the original text
    end: int


def tokens(text: str) -> list[Token]:
    """Tokens with their positions in ``text``, for highlighting (web addresses left out)."""
    text = without_urls(text)
    if text.isascii():  # folding ASCII is lowercasing, and keeps every offset
        return [
            Token(word, stem_key(word), match.start(), match.end())
            for match in _WORD.finditer(text.lower())
            for word in (match.group(),)
        ]
    found = []
    for match in _WORD.finditer(text):
        word = fold(match.group())
        found.append(Token(word, stem_key(word), match.start(), match.end()))
    return found
