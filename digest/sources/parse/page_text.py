"""Parse text captures of Hugging Face papers listing pages (copied from a browser).

Pure: text in, a Listing out. The captures come in several layouts (compact lines,
blank-line blocks, blocks with a metadata block after some abstracts) and in small
variations, so the parser reads structure rather than exact files:

1. The text is cut into chunks: blank-line blocks when the capture has blank lines,
   otherwise single lines.
2. Metadata lines (``• 13 authors``, ``·``, ``Dec 12, 2024 4``) attach to the paper
   before them.
3. The page header is everything before the first title: the chunk right before the
   first long, sentence-like chunk (an abstract). ``Subscribe`` glued to that title is
   page chrome and is removed.
4. The remaining chunks alternate title, abstract. A title-like chunk where an abstract
   is expected, followed by an abstract, is a paper whose abstract is missing.

The captures carry no arXiv ids, so these papers are identified by normalised title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date

from digest.errors import ParseError
from digest.models import Paper
from digest.sources.parse.listing import Listing

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
)}  # fmt: skip
_DATE = re.compile(
    r"^(?P<month>[A-Z][a-z]{2})[a-z]*\.? (?P<day>\d{1,2})"
    r"(?:, (?P<year>\d{4}))?(?: (?P<votes>\d+))?$"
)
_AUTHORS = re.compile(r"^[•·*\-]?\s*(?P<count>\d+) authors?$")
_SEPARATORS = {"·", "•", "-", "|"}
_GLUED_HEADER = re.compile(r"^Subscribe(?=\S)")
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
_HEADERS = {
    "new",
    "subscribe",
    "daily papers",
    "trending papers",
    "byak and the research community",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
}


@dataclass(slots=True)
class _Draft:
    title: str
    abstract: str = ""
    author_count: int | None = None
    published: date | None = None
    upvotes: int | None = None
    extra: list[str] = field(default_factory=list)


def parse_page_text(text: str, origin: str, *, today: date | None = None) -> Listing:
    """Parse one capture. ``today`` dates metadata without a year ("Oct 9" = this year)."""
    chunks = _chunks(text)
    if not chunks:
        raise ParseError(f"{origin}: the file is empty")
    start = _first_title(chunks)
    if start is None:
        raise ParseError(
            f"{origin}: no paper found: expected a title followed by an abstract",
            hint="is this a capture of a Hugging Face papers page?",
        )
    listing = Listing(listed_on=_header_date(chunks[:start], today))
    drafts: list[_Draft] = []
    pending_title: str | None = None
    body = chunks[start:]
    body[0] = _GLUED_HEADER.sub("", body[0]).strip()
    for index, chunk in enumerate(body):
        meta = _metadata(chunk)
        if meta is not None:
            if pending_title is not None:  # a paper without an abstract
                drafts.append(_Draft(pending_title))
                pending_title = None
            if not drafts:
                listing.warnings.append(f"{origin}: metadata {chunk!r} before any paper, ignored")
                continue
            _apply_metadata(drafts[-1], meta, today)
            continue
        if pending_title is None:
            pending_title = chunk
            continue
        following = body[index + 1] if index + 1 < len(body) else None
        if _is_title_like(chunk) and following is not None and _is_abstract_like(following):
            drafts.append(_Draft(pending_title))  # the abstract of pending_title is missing
            pending_title = chunk
            continue
        drafts.append(_Draft(pending_title, abstract=chunk))
        pending_title = None
    if pending_title is not None:
        if _is_abstract_like(pending_title):
            listing.warnings.append(f"{origin}: text at the end has no title, ignored")
        else:
            drafts.append(_Draft(pending_title))
    for number, draft in enumerate(drafts, start=1):
        listing.add(_to_paper(draft), origin, f"paper {number}")
    return listing


def _chunks(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    if any(not line.strip() for line in lines[:-1]):  # blank lines: the block layouts
        chunks: list[str] = []
        for block in re.split(r"\n\s*\n", "\n".join(lines)):
            chunks.extend(_split_block(block))
        return [c for c in chunks if c]
    return [line.strip() for line in lines if line.strip()]


def _split_block(block: str) -> list[str]:
    """A block is one chunk, except that metadata lines inside it stand on their own."""
    parts: list[str] = []
    text: list[str] = []
    for line in block.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if _metadata(stripped) is not None:
            if text:
                parts.append(" ".join(text))
                text = []
            parts.append(stripped)
        else:
            text.append(stripped)
    if text:
        parts.append(" ".join(text))
    return parts


def _metadata(chunk: str) -> tuple[str, re.Match[str] | None] | None:
    if chunk in _SEPARATORS:
        return ("separator", None)
    if match := _AUTHORS.match(chunk):
        return ("authors", match)
    if (match := _DATE.match(chunk)) and match.group("month").lower() in _MONTHS:
        return ("date", match)
    return None


def _apply_metadata(
    draft: _Draft, meta: tuple[str, re.Match[str] | None], today: date | None
) -> None:
    kind, match = meta
    if match is None:
        return
    if kind == "authors":
        draft.author_count = int(match.group("count"))
    elif kind == "date":
        draft.published = _date_of(match, today)
        if match.group("votes"):
            draft.upvotes = int(match.group("votes"))


def _date_of(match: re.Match[str], today: date | None) -> date | None:
    month = _MONTHS[match.group("month").lower()]
    day = int(match.group("day"))
    year_text = match.group("year")
    if year_text:
        year = int(year_text)
    elif today is not None:
        # No year means "this year" on the page; a day after today must be last year's.
        year = today.year if (month, day) <= (today.month, today.day) else today.year - 1
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _header_date(header: list[str], today: date | None) -> date | None:
    for chunk in header:
        match = _DATE.match(chunk)
        if match and match.group("month").lower() in _MONTHS and not match.group("votes"):
            return _date_of(match, today)
    return None


def _is_abstract_like(chunk: str) -> bool:
    """Long running text: several sentences, or one very long one."""
    return len(chunk) >= 300 or (len(chunk) >= 120 and len(_SENTENCE_END.findall(chunk)) >= 2)


def _is_title_like(chunk: str) -> bool:
    return len(chunk) <= 300 and not _is_abstract_like(chunk)


def _first_title(chunks: list[str]) -> int | None:
    """Index of the first title: the chunk before the first abstract, or earlier when
    papers without an abstract (a title and its metadata) come before that."""
    first_abstract = next(
        (
            i
            for i, chunk in enumerate(chunks)
            if _is_abstract_like(chunk) and _metadata(chunk) is None
        ),
        None,
    )
    if not first_abstract:
        return None
    start = first_abstract - 1
    header_end = max((i for i in range(start) if _is_header(chunks[i])), default=-1)
    if any(_metadata(chunks[i]) is not None for i in range(header_end + 1, start)):
        return header_end + 1
    return start


def _is_header(chunk: str) -> bool:
    meta = _metadata(chunk)
    return chunk.casefold() in _HEADERS or (meta is not None and meta[0] == "date")


def _to_paper(draft: _Draft) -> Paper:
    paper = Paper.from_source(title=draft.title, abstract=draft.abstract)
    return replace(
        paper,
        author_count=draft.author_count,
        published=draft.published,
        upvotes=draft.upvotes,
    )
