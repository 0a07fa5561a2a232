"""The template context: what every template receives, as documented value types.

Templates get one variable, ``digest`` (a :class:`DigestView`). Users who override a
template (``templates = "my-templates"`` in the config) can rely on these fields; they are
plain data, already computed, so templates hold no logic beyond loops and conditions.
Text fields are untrusted (they come from sources): HTML templates autoescape them, and
``highlight`` (a filter) escapes them while marking matched terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from digest.ids import pdf_url
from digest.models import Digest, Scored

_FIELD_LABELS = {"title": "title", "abstract": "abstract", "authors": "author"}
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`\\]+$", re.IGNORECASE)


def title_search_url(title: str) -> str:
    """arXiv's title search: the way to a paper known only by its title."""
    return "https://arxiv.org/search/?" + urlencode({"query": title, "searchtype": "title"})


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None: sources are not trusted with
    ``javascript:`` links or markup smuggled into an attribute."""
    return url if url and _SAFE_URL.match(url) else None


@dataclass(frozen=True, slots=True)
class MatchView:
    term: str
    where: str  # "title", "abstract" or "author"


@dataclass(frozen=True, slots=True)
class PaperView:
    """One paper as the templates show it."""

    number: int  # 1-based position in the digest
    ref: str  # arXiv id, or "title:..." for papers known only by title
    arxiv_id: str | None
    title: str
    abstract: str
    link: str  # arXiv abstract page when known, else the source's page, else a title search
    link_label: str  # "arXiv 2401.12345", "Source" or "Find on arXiv"
    pdf_link: str | None
    hf_link: str | None
    authors: tuple[str, ...]
    author_total: int
    categories: tuple[str, ...]
    published: date | None
    upvotes: int | None
    github_repo: str | None
    github_stars: int | None
    project_page: str | None
    score: float
    matches: tuple[MatchView, ...]  # one per (term, field), strongest first
    terms: tuple[str, ...]  # distinct matched terms, for highlighting

    @property
    def match_groups(self) -> list[tuple[str, str]]:
        """(term, where) pairs, one per term: ("linear attention", "title, abstract")."""
        grouped: dict[str, list[str]] = {}
        for match in self.matches:
            grouped.setdefault(match.term, []).append(match.where)
        return [(term, ", ".join(where)) for term, where in grouped.items()]

    @property
    def why(self) -> str:
        """One line that says why the paper was chosen: "linear attention (title, abstract)"."""
        return "; ".join(f"{term} ({where})" for term, where in self.match_groups)

    @property
    def authors_short(self) -> str:
        """At most three names, then "et al." with the total."""
        if not self.authors:
            return f"{self.author_total} authors" if self.author_total else ""
        if len(self.authors) <= 3:
            return ", ".join(self.authors)
        return f"{', '.join(self.authors[:3])} et al. ({self.author_total} authors)"


@dataclass(frozen=True, slots=True)
class DigestView:
    """A digest as the templates show it."""

    subscriber: str
    date: date
    slug: str  # file-name stem: 2026-03-14, or 2026-03-14-2 for a second digest that day
    papers: tuple[PaperView, ...]
    shown: int  # how many papers the email shows (all, unless it would be too large)
    candidates: int
    page_url: str | None  # this digest's HTML page, when the output folder is served
    feed_url: str | None
    generated_at: datetime

    @property
    def count(self) -> int:
        return len(self.papers)

    @property
    def hidden(self) -> int:
        return len(self.papers) - self.shown


def paper_view(number: int, item: Scored) -> PaperView:
    paper = item.paper.paper
    hf_link = paper.url if paper.url and "huggingface.co" in paper.url else None
    if paper.arxiv_id and not hf_link and "hf_daily" in paper.sources:
        hf_link = f"https://huggingface.co/papers/{paper.arxiv_id}"
    link, label = safe_url(paper.link), f"arXiv {paper.arxiv_id}"
    if not paper.arxiv_id:
        label = "Source" if link else "Find on arXiv"
    link = link or title_search_url(paper.title)
    seen: set[tuple[str, str]] = set()
    matches: list[MatchView] = []
    for match in sorted(item.matches, key=lambda m: (-m.points, m.term, m.field)):
        key = (match.term, match.field)
        if key not in seen:
            seen.add(key)
            matches.append(MatchView(match.term, _FIELD_LABELS.get(match.field, match.field)))
    return PaperView(
        number=number,
        ref=paper.ref,
        arxiv_id=paper.arxiv_id,
        title=paper.title,
        abstract=paper.abstract,
        link=link,
        link_label=label,
        pdf_link=safe_url(paper.pdf_url or (pdf_url(paper.arxiv_id) if paper.arxiv_id else None)),
        hf_link=safe_url(hf_link),
        authors=paper.authors,
        author_total=paper.author_total,
        categories=paper.categories,
        published=paper.published,
        upvotes=paper.upvotes,
        github_repo=safe_url(paper.github_repo),
        github_stars=paper.github_stars,
        project_page=safe_url(paper.project_page),
        score=item.score,
        matches=tuple(matches),
        terms=tuple(m.term for m in item.matches if m.field != "authors"),
    )


def digest_view(
    digest: Digest,
    *,
    generated_at: datetime,
    base_url: str | None = None,
    shown: int | None = None,
) -> DigestView:
    papers = tuple(paper_view(i, item) for i, item in enumerate(digest.papers, start=1))
    return DigestView(
        subscriber=digest.subscriber,
        date=digest.date,
        slug=digest.slug,
        papers=papers,
        shown=len(papers) if shown is None else min(shown, len(papers)),
        candidates=digest.candidates,
        page_url=f"{base_url}/pages/{digest.subscriber}/{digest.slug}.html" if base_url else None,
        feed_url=f"{base_url}/feeds/{digest.subscriber}.atom" if base_url else None,
        generated_at=generated_at,
    )
