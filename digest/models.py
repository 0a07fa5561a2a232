"""The values that flow through a run: papers, scored papers, digests.

All are frozen dataclasses: parsers build them, the store persists them, ranking and
rendering read them. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from digest.ids import (
    abs_url,
    clean_text,
    collapse_whitespace,
    cut_text,
    latex_to_text,
    normalize_title,
)

# The longest fields a source may hand in. Real titles stay under 300 characters and arXiv
# abstracts under 1,920, but LaTeX conversion costs some 15-20 s of CPU per MB, so a
# hostile or broken listing is cut here, before anything converts it.
TITLE_LIMIT = 1_000
ABSTRACT_LIMIT = 20_000
AUTHOR_NAME_LIMIT = 200
AUTHORS_LIMIT = 500  # names kept; author_count still says how many there were


@dataclass(frozen=True, slots=True)
class Paper:
    """One listing of a paper, as a source saw it, or the store's merge of several.

    ``title`` and ``abstract`` are readable text (LaTeX reduced, white space collapsed);
    ``title_raw`` and ``abstract_raw`` keep what the source gave, less its invisible
    characters and cut to the field limits. Optional fields are None
    or empty when the source does not know them, never guessed.
    """

    title: str
    abstract: str = ""
    title_raw: str = ""
    abstract_raw: str = ""
    arxiv_id: str | None = None
    version: int | None = None
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    categories: tuple[str, ...] = ()
    published: date | None = None
    url: str | None = None
    pdf_url: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    announce_type: str | None = None
    upvotes: int | None = None
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @classmethod
    def from_source(
        cls,
        *,
        title: str,
        abstract: str = "",
        authors: tuple[str, ...] = (),
        author_count: int | None = None,
        **fields: Any,
    ) -> Paper:
        """Build a paper from a source's raw, untrusted text, deriving the readable text.

        The one place a listing's text enters: invisible characters are dropped (see
        ``clean_text``), then each field is cut to its limit (``cut_fields`` tells which
        were), and only then is LaTeX converted, so no input can cost more than a
        bounded amount of work.
        """
        title_raw = cut_text(clean_text(title).strip(), TITLE_LIMIT)
        abstract_raw = cut_text(clean_text(abstract).strip(), ABSTRACT_LIMIT)
        names = tuple(
            cut_text(name, AUTHOR_NAME_LIMIT) for name in map(collapse_whitespace, authors) if name
        )
        return cls(
            title=latex_to_text(title_raw),
            abstract=latex_to_text(abstract_raw),
            title_raw=title_raw,
            abstract_raw=abstract_raw,
            authors=names[:AUTHORS_LIMIT],
            author_count=max(author_count or 0, len(names))
            if len(names) > AUTHORS_LIMIT
            else author_count,
            **fields,
        )

    @property
    def title_key(self) -> str:
        return normalize_title(self.title_raw or self.title)

    @property
    def ref(self) -> str:
        """A stable, human-readable id: the arXiv id, else ``title:`` and the title key."""
        return self.arxiv_id or f"title:{self.title_key}"

    @property
    def link(self) -> str | None:
        """Where a reader should go: the arXiv abstract page when the id is known."""
        if self.arxiv_id:
            return abs_url(self.arxiv_id)
        return self.url

    @property
    def author_total(self) -> int:
        return max(len(self.authors), self.author_count or 0)

    def with_source(self, name: str) -> Paper:
        return (
            self
            if name in self.sources
            else dataclasses.replace(self, sources=(*self.sources, name))
        )

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Paper:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("authors", "categories", "ai_keywords", "sources"):
            values[name] = tuple(values.get(name) or ())
        if values.get("published"):
            values["published"] = date.fromisoformat(values["published"])
        return cls(**values)


def cut_fields(paper: Paper) -> tuple[str, ...]:
    """The fields of ``paper`` that ``Paper.from_source`` cut to their limit.

    A cut text ends in an ellipsis past its limit, so it is the only kind of text longer
    than the limit; a cut author list is full and its author_count says there were more.
    """
    cut = []
    if len(paper.title_raw) > TITLE_LIMIT:
        cut.append(f"title (over {TITLE_LIMIT:,} characters)")
    if len(paper.abstract_raw) > ABSTRACT_LIMIT:
        cut.append(f"abstract (over {ABSTRACT_LIMIT:,} characters)")
    if any(len(name) > AUTHOR_NAME_LIMIT for name in paper.authors):
        cut.append(f"author names (over {AUTHOR_NAME_LIMIT:,} characters)")
    if len(paper.authors) == AUTHORS_LIMIT and (paper.author_count or 0) > AUTHORS_LIMIT:
        cut.append(f"authors (first {AUTHORS_LIMIT:,} of {paper.author_count:,} kept)")
    return tuple(cut)


@dataclass(frozen=True, slots=True)
class StoredPaper:
    """A paper as the store holds it: its row id and the digest date it was first seen."""

    uid: int
    paper: Paper
    first_seen: date


class Match(NamedTuple):
    """One reason a paper scored: ``term`` found ``count`` times in ``field``.

    ``field`` is title, abstract, authors, category, popularity, liked, rated (like a
    paper the reader rated up), disliked (like one rated down: negative points), taste
    (the model of the reader's ratings: points either way) or neighbours (what the
    paper's closest candidates score on the interest; ``term`` names the one that lends
    most). A keyword has one
    Match per field, with all its points there; ``kind`` says the strongest way it matched
    in that field: the exact phrase, its words near each other, or only some of its words.
    A named tuple, not a dataclass: a large run makes millions, and it is five times
    quicker to create.
    """

    term: str
    field: str
    count: int
    points: float
    kind: str = "phrase"  # phrase | near | word | signal
    via: str = ""  # for kind "word": the words of the phrase that matched, space-separated


@dataclass(frozen=True, slots=True)
class Scored:
    """A paper with its score and the matches that explain it."""

    paper: StoredPaper
    score: float
    matches: tuple[Match, ...] = ()
    section: str | None = None  # the interest (named keyword group) it was chosen for

    @property
    def matched_terms(self) -> tuple[str, ...]:
        """Distinct matched terms, strongest first."""
        seen: dict[str, float] = {}
        for match in self.matches:
            seen[match.term] = seen.get(match.term, 0.0) + match.points
        return tuple(sorted(seen, key=lambda term: (-seen[term], term)))


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber gets from one run: the chosen papers, best first."""

    subscriber: str
    date: date
    seq: int
    papers: tuple[Scored, ...]
    candidates: int = 0
    digest_id: int | None = None

    @property
    def slug(self) -> str:
        return digest_slug(self.date, self.seq)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A paper delivered to a subscriber's feed, with when it was delivered."""

    scored: Scored
    digest_date: date
    delivered_at: datetime | None


def digest_slug(day: date, seq: int) -> str:
    """The file-name stem of a digest: its date, with the sequence after the day's first."""
    return day.isoformat() if seq <= 1 else f"{day.isoformat()}-{seq}"
