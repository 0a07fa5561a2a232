"""Paper identity: arXiv ids, normalised titles, and LaTeX reduced to readable text.

Two listings are the same paper when they share an arXiv id (without version) or, when no
id is known, the same normalised title. These functions are pure and cheap; the store uses
their output as lookup keys, so changing them changes identity: keep them stable.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

# New-style ids: YYMM.NNNN (to 2014-12) or YYMM.NNNNN (from 2015-01). Old-style ids carry an
# archive, an optional subject class and seven digits: hep-th/9901001, math.CO/0112567.
_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Za-z]{2})?/\d{7}"
_ID_WITH_VERSION = re.compile(rf"^(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?$")
_ARXIV_LINK = re.compile(
    rf"arxiv\.org/(?:abs|pdf)/(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?", re.IGNORECASE
)
_PREFIXES = re.compile(
    r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|oai:arxiv\.org:)",
    re.IGNORECASE,
)


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Split an arXiv identifier in any common spelling into (bare id, version).

    Accepts ``2401.12345``, ``2401.12345v2``, ``arXiv:2401.12345``, abs/pdf URLs (with or
    without ``.pdf``), ``oai:arXiv.org:2401.12345v1`` and old-style ``hep-th/9901001v3``.
    Returns None for anything else, so callers can fall back to the title.
    """
    candidate = _PREFIXES.sub("", text.strip())
    candidate = candidate.removesuffix(".pdf").rstrip("/")
    match = _ID_WITH_VERSION.match(candidate)
    if not match:
        return None
    version = match.group("version")
    return _canonical_id(match.group("id")), int(version) if version else None


def find_arxiv_id(text: str) -> str | None:
    """The bare id of the first arxiv.org abs/pdf link in free text, if any."""
    match = _ARXIV_LINK.search(text)
    return _canonical_id(match.group("id")) if match else None


_TRAILING_ID = re.compile(rf"/(?P<id>{_NEW_ID})(?:v(?P<version>\d+))?/?$")


def trailing_arxiv_id(url: str) -> tuple[str, int | None] | None:
    """An arXiv id that ends a URL path of a site mirroring arXiv (``.../p/2604.26238``).

    Only new-style ids: their YYMM.NNNNN shape is too specific to be anything else.
    """
    match = _TRAILING_ID.search(url.split("?", 1)[0].split("#", 1)[0])
    if not match:
        return None
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def _canonical_id(bare_id: str) -> str:
    # Archive names are lower case; subject classes in old ids keep their upper case.
    if "/" in bare_id:
        archive, number = bare_id.split("/", 1)
        name, _, subject = archive.partition(".")
        return (
            f"{name.lower()}.{subject.upper()}/{number}" if subject else f"{name.lower()}/{number}"
        )
    return bare_id


def abs_url(arxiv_id: str) -> str:
    """The arXiv abstract page of a bare id (always the latest version)."""
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


# --- Untrusted text ------------------------------------------------------------------------

# Characters a reader cannot see but a renderer obeys: bidi embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069) make "txt.exe" read as "exe.txt"; zero-width
# spaces, joiners and marks (U+200B-U+200F) and the BOM (U+FEFF) hide inside words, so
# "atten\u200btion" looks like "attention" and matches no keyword. They are every format
# character (Unicode category Cf), the control characters but for white space (Cc), lone
# surrogates (Cs, which JSON escapes can make and UTF-8 cannot encode), and the two
# non-characters XML refuses. Format characters live in planes 0, 1 and 14 only.
_PLANES_WITH_FORMAT_CHARACTERS = (range(0x20000), range(0xE0000, 0xE1000))
_KEPT_CONTROLS = frozenset("\t\n\x0b\x0c\r")
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


@lru_cache(maxsize=1)
def _invisible() -> re.Pattern[str]:
    """A character class of every invisible character, built from Python's Unicode data
    (once, on first use: scanning the planes takes some 25 ms)."""
    codes = [code for plane in _PLANES_WITH_FORMAT_CHARACTERS for code in plane if _hidden(code)]
    codes += [0xFFFE, 0xFFFF]
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in runs) + "]")


def _hidden(code: int) -> bool:
    category = unicodedata.category(chr(code))
    return category in {"Cf", "Cs"} or (category == "Cc" and chr(code) not in _KEPT_CONTROLS)


def clean_text(text: str) -> str:
    """Untrusted text without its invisible characters, line and paragraph separators
    (U+2028, U+2029) made spaces. Everything visible, and ordinary white space, is kept.

    Applied once, where a source's text becomes a paper, so every channel (email, feeds,
    pages, Markdown) shows what the reader sees and nothing that reorders or hides it.
    """
    if text.isascii():  # most of arXiv: only its control characters can hide, and faster
        return _ASCII_CONTROLS.sub("", text)
    return _LINE_SEPARATORS.sub(" ", _invisible().sub("", text))


def collapse_whitespace(text: str) -> str:
    """One space between words, none at the ends, no invisible characters: undoes hard
    wraps and indentation, and drops what no reader should see."""
    return " ".join(clean_text(text).split())


def cut_text(text: str, limit: int) -> str:
    """``text`` when it has at most ``limit`` characters, else its first ``limit`` and an
    ellipsis: so a cut text, and only a cut text, is longer than its limit."""
    return text if len(text) <= limit else text[:limit] + "\u2026"


@lru_cache(maxsize=65536)
def normalize_title(title: str) -> str:
    """The identity key of a title: same paper, same key, whatever the source's spelling.

    NFKC, LaTeX reduced to text, case-folded, every run of punctuation and white space
    turned into one space. "Radial Attention: $O(n\\log n)$" and "radial attention o(n log
    n)" give the same key.
    """
    text = latex_to_text(unicodedata.normalize("NFKC", title))
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return collapse_whitespace(text)


# --- LaTeX to text ------------------------------------------------------------------------

# Operators whose macros pylatexenc renders glued to the previous token ("nlog n").
_SPACED_OPERATORS = (
    "log", "ln", "exp", "sin", "cos", "tan", "min", "max", "arg", "det", "lim", "sup", "inf",
)  # fmt: skip
_LOOKS_LIKE_LATEX = re.compile(r"\\[A-Za-z]|\\[\"'`^~{}&%$#_()\[\]]|\$[^$]+\$")
_UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def _dollars_are_prices(text: str) -> bool:
    """True when the unescaped dollars in text cannot be math delimiters.

    Math comes in pairs hugging its content (``$x^2$``); "$5 and $10" has an odd
    count or a pair padded with spaces.
    """
    parts = _UNESCAPED_DOLLAR.split(text)
    if len(parts) % 2 == 0:  # an odd number of dollars
        return True
    inside = parts[1::2]
    return any(not part or part != part.strip() for part in inside)


def _unknown_macro(node: object) -> str:
    # A macro pylatexenc does not know (an author's \ours, \method): keep its name as a
    # word rather than dropping it silently from the sentence.
    return getattr(node, "macroname", "") + getattr(node, "macro_post_space", "")


@lru_cache(maxsize=1)
def _converter() -> LatexNodes2Text:
    db = get_default_latex_context_db()
    db = db.filter_context()  # a private copy we may extend
    db.add_context_category(
        "paper-digest",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl=f" {name}") for name in _SPACED_OPERATORS],
    )
    db.set_unknown_macro_spec(MacroTextSpec("", simplify_repl=_unknown_macro))
    return LatexNodes2Text(latex_context=db, math_mode="text", strict_latex_spaces=False)


@lru_cache(maxsize=65536)
def latex_to_text(text: str) -> str:
    """Reduce the LaTeX that titles and abstracts carry to readable Unicode.

    ``$O(n\\log n)$`` becomes ``O(n log n)``, ``B\\"uttiker`` becomes ``Büttiker``,
    ``\\textbf{x}`` becomes ``x``. Plain text is returned unchanged (with white space
    collapsed), a bare ``%`` means percent rather than a comment, and text LaTeX cannot
    parse is returned as it was: the original is always kept beside this rendering.
    """
    if not _LOOKS_LIKE_LATEX.search(text):
        return collapse_whitespace(text)
    escaped = _UNESCAPED_PERCENT.sub(r"\\%", text)
    if _dollars_are_prices(escaped):
        escaped = _UNESCAPED_DOLLAR.sub(r"\\$", escaped)
    try:
        converted = _converter().latex_to_text(escaped)
    except Exception:  # pylatexenc raises assorted errors on odd input; keep the text
        return collapse_whitespace(text)
    return collapse_whitespace(converted) or collapse_whitespace(text)
