"""The template context: what every template receives, as documented value types.

Templates get one variable, ``digest`` (a :class:`DigestView`). Users who override a
template (``templates = "my-templates"`` in the config) can rely on these fields; they are
plain data, already computed, so templates hold no logic beyond loops and conditions.
Text fields are untrusted (they come from sources): HTML templates autoescape them, and
``highlight`` (a filter) escapes them while marking matched terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from urllib.parse import urlencode

from digest.ids import pdf_url
from digest.models import Digest, Match, Paper, Scored
from digest.rank.text import STOP_WORDS

_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`\\]+$", re.IGNORECASE)
# What one paper may take of a digest: a source's 100 KB title (or author name, or link)
# must not push the other papers out of an email, nor bury them on a page or in a feed.
TITLE_LIMIT = 300
NAME_LIMIT = 100
URL_LIMIT = 2_000


def title_search_url(title: str) -> str:
    """arXiv's title search: the way to a paper known only by its title."""
    return "https://arxiv.org/search/?" + urlencode({"query": title, "searchtype": "title"})


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None: sources are not trusted with
    ``javascript:`` links or markup smuggled into an attribute, nor with links longer
    than any real one (``URL_LIMIT``)."""
    return url if url and len(url) <= URL_LIMIT and _SAFE_URL.match(url) else None


@dataclass(frozen=True, slots=True)
class Reason:
    """One line of "why this paper": a label to emphasise and where or how it matched.

    Examples: ("linear attention", "title, abstract"), ("token pruning", "abstract, words
    apart"), ("Yann LeCun", "author"), ("similar to a paper you liked", "<its title>").
    """

    label: str
    detail: str
    points: float


@dataclass(frozen=True, slots=True)
class PaperFacts:
    """What the templates show of a paper whatever the reader: built once per paper."""

    ref: str  # arXiv id, or "title:..." for papers known only by title
    arxiv_id: str | None
    title: str  # at most TITLE_LIMIT characters (cut with "…"); the store keeps it whole
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
    authors_short: str  # at most three names, then "et al." with the total
    meta: str  # authors · first three categories · date · ▲ upvotes · ★ stars


@dataclass(frozen=True, slots=True)
class PaperView:
    """One paper as the templates show it: its facts (also as attributes: ``p.title``,
    ``p.link``, ``p.authors_short``, ``p.meta``...) and why this reader got it."""

    number: int  # 1-based position in the digest
    facts: PaperFacts
    score: float
    reasons: tuple[Reason, ...]  # why it was chosen: strongest first, closeness to matches last
    terms: tuple[str, ...]  # matched keyword terms, for highlighting
    section: str | None  # the interest it was chosen for, when the reader has several
    # The signed rating link without its vote: "{rate_url}/up" is "more like this",
    # "{rate_url}/down" "less like this". None when the config signs no links.
    rate_url: str | None = None

    @property
    def why(self) -> str:
        """One line: "linear attention (title, abstract) · mamba (abstract)"."""
        return " · ".join(f"{r.label} ({r.detail})" for r in self.reasons)

    def __getattr__(self, name: str) -> object:
        """The paper's facts read as the view's own: ``p.title``, ``p.link``..."""
        if name.startswith("_"):  # copy and pickle probe for these; facts has none
            raise AttributeError(name)
        return getattr(self.facts, name)


@dataclass(frozen=True, slots=True)
class DigestView:
    """A digest as the templates show it."""

    subscriber: str
    date: date
    slug: str  # file-name stem: 2026-03-14, or 2026-03-14-2 for a second digest that day
    papers: tuple[PaperView, ...]
    shown: int  # how many papers the email shows: all (a digest too large is sent as several)
    candidates: int
    page_url: str | None  # this digest's HTML page, when the output folder is served
    feed_url: str | None
    generated_at: datetime
    # The reader's signed links (None when the config signs no links, see digest.links).
    manage_url: str | None = None
    unsubscribe_url: str | None = None
    ratings_url: str | None = None

    @property
    def count(self) -> int:
        return len(self.papers)

    @property
    def hidden(self) -> int:
        return len(self.papers) - self.shown

    @property
    def sections(self) -> tuple[Section, ...]:
        """All papers by interest (for pages and Markdown)."""
        return sections_of(self.papers)

    @property
    def shown_sections(self) -> tuple[Section, ...]:
        """The papers the email shows, by interest."""
        return sections_of(self.papers[: self.shown])


MINOR_SHARE = 0.1  # reasons worth less than this share of the score are not shown
# What the paper's closest candidates lend (score regularisation) says why it ranks where
# it does, not what it is about: on a big day nearly every paper has it, so the Why line
# gives it last, after the reasons that are the reader's own, with a shorter title.
CLOSE_TO_MATCHES = "close to other matches"

_SIGNALS = {
    "authors": lambda m: Reason(m.term, "author", m.points),
    "category": lambda m: Reason(m.term, "category", m.points),
    "popularity": lambda m: Reason(m.term, "popular", m.points),
    "liked": lambda m: Reason("similar to a paper you liked", _shorten(m.term, 90), m.points),
    "rated": lambda m: Reason("like papers you rated up", _shorten(m.term, 90), m.points),
    "disliked": lambda m: Reason("like a paper you rated down", _shorten(m.term, 90), m.points),
    "taste": lambda m: Reason("close to what you rated up", _learnt(m), m.points),
    "neighbours": lambda m: Reason(CLOSE_TO_MATCHES, _shorten(m.term, 60), m.points),
}


def _learnt(taste: Match) -> str:
    count = taste.count
    return f"{_shorten(taste.term, 80)}; learnt from {count} rating{'' if count == 1 else 's'}"


def _signal_reasons(matches: Sequence[Match]) -> list[Reason]:
    """A reason per signal, except that the similarity to a paper rated up and the
    ratings' model moving the paper up because of that same paper say one thing: they
    are one reason, worth both ("like papers you rated up: *title*; learnt from N
    ratings")."""
    taste = {m.term: m for m in matches if m.field == "taste" and m.points > 0}
    rated = {m.term for m in matches if m.field == "rated"}
    found = []
    for match in matches:
        if match.field not in _SIGNALS:
            continue
        if match.field == "taste" and match.points > 0 and match.term in rated:
            continue  # said with the similarity to the same paper
        model = taste.get(match.term) if match.field == "rated" else None
        if model is None:
            found.append(_SIGNALS[match.field](match))
        else:
            found.append(
                Reason("like papers you rated up", _learnt(model), match.points + model.points)
            )
    return found


def reasons_of(item: Scored) -> tuple[Reason, ...]:
    """One reason per keyword (and per signal), strongest first; the closeness to other
    matches comes last, whatever it is worth.

    A keyword says where its exact phrase matched; failing that, where its words stood
    near each other; failing that, which of its words matched on their own.
    """
    phrase: dict[str, list[str]] = {}
    near: dict[str, list[str]] = {}
    alone: dict[str, dict[str, None]] = {}
    fields: dict[str, list[str]] = {}
    points: dict[str, float] = {}
    signals = _signal_reasons(item.matches)
    related: dict[str, None] = {}  # words related to the interest (rank.expand)
    related_fields: list[str] = []
    related_points = 0.0
    for match in item.matches:
        if match.field in _SIGNALS:
            continue
        if match.kind == "related":
            related.update(dict.fromkeys(match.via.split()))
            _add(related_fields, match.field)
            related_points += match.points
            continue
        points[match.term] = points.get(match.term, 0.0) + match.points
        target = {"phrase": phrase, "near": near}.get(match.kind)
        if target is not None:
            _add(target.setdefault(match.term, []), match.field)
        else:
            alone.setdefault(match.term, {}).update(dict.fromkeys(match.via.split()))
            _add(fields.setdefault(match.term, []), match.field)
    reasons = []
    for term, total in points.items():
        if term in phrase:
            detail = ", ".join(phrase[term])
        elif term in near:
            detail = "words apart in " + ", ".join(near[term])
        else:
            words = ", ".join(f"“{w}”" for w in alone[term])
            detail = f"{words} in {', '.join(fields[term])}"
        reasons.append(Reason(term, detail, total))
    if related:
        words = ", ".join(list(related)[:3])
        reasons.append(Reason(f"related: {words}", ", ".join(related_fields), related_points))
    ranked = sorted(
        reasons + signals, key=lambda r: (r.label == CLOSE_TO_MATCHES, -r.points, r.label)
    )
    # The one-line "why" keeps what mattered (never what counted against the paper);
    # `digest explain` lists every point.
    return tuple(
        r
        for i, r in enumerate(ranked)
        if r.points >= 0 and (i == 0 or r.points >= MINOR_SHARE * item.score)
    )


def _add(places: list[str], place: str) -> None:
    if place not in places:
        places.append(place)


def highlight_terms(item: Scored) -> tuple[str, ...]:
    """The terms to mark in the text: exact phrases, words of near matches, single words.
    Related words (rank.expand) are named among the reasons but not marked: what stands
    out in an abstract is the reader's own keywords."""
    terms: list[str] = []
    for match in item.matches:
        if match.field not in ("title", "abstract") or match.kind == "related":
            continue
        if match.kind == "near":  # its words, less those that never score alone ("for")
            terms.extend(w for w in match.term.strip('"').split() if w.lower() not in STOP_WORDS)
        elif match.kind == "word":
            terms.extend(match.via.split())
        else:
            terms.append(match.term)
    return tuple(dict.fromkeys(terms))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def paper_view(number: int, item: Scored, rate_url: str | None = None) -> PaperView:
    return PaperView(
        number=number,
        facts=paper_facts(item.paper.paper),
        score=item.score,
        reasons=reasons_of(item),
        terms=highlight_terms(item),
        section=item.section,
        rate_url=rate_url,
    )


@lru_cache(maxsize=8192)  # a paper in many readers' digests is looked at once
def paper_facts(paper: Paper) -> PaperFacts:
    hf_link = paper.url if paper.url and "huggingface.co" in paper.url else None
    link, label = safe_url(paper.link), f"arXiv {paper.arxiv_id}"
    if not paper.arxiv_id:
        label = "Source" if link else "Find on arXiv"
    title = _shorten(paper.title, TITLE_LIMIT)
    authors = tuple(_shorten(name, NAME_LIMIT) for name in paper.authors)
    categories = tuple(_shorten(name, NAME_LIMIT) for name in paper.categories)
    total = paper.author_total
    if not authors:
        short = f"{total} authors" if total else ""
    elif len(authors) <= 3:
        short = ", ".join(authors)
    else:
        short = f"{', '.join(authors[:3])} et al. ({total} authors)"
    meta = [short, ", ".join(categories[:3])]
    meta.append(paper.published.strftime("%d %b %Y") if paper.published else "")
    meta.append(f"▲ {paper.upvotes}" if paper.upvotes else "")
    meta.append(f"★ {paper.github_stars}" if paper.github_stars else "")
    return PaperFacts(
        ref=paper.ref,
        arxiv_id=paper.arxiv_id,
        title=title,
        abstract=paper.abstract,
        link=link or title_search_url(title),
        link_label=label,
        pdf_link=safe_url(paper.pdf_url or (pdf_url(paper.arxiv_id) if paper.arxiv_id else None)),
        hf_link=safe_url(hf_link),
        authors=authors,
        author_total=total,
        categories=categories,
        published=paper.published,
        upvotes=paper.upvotes,
        github_repo=safe_url(paper.github_repo),
        github_stars=paper.github_stars,
        project_page=safe_url(paper.project_page),
        authors_short=short,
        meta=" · ".join(part for part in meta if part),
    )


@dataclass(frozen=True, slots=True)
class ReaderLinks:
    """One reader's signed links, as the views show them (made by ``digest.links``)."""

    manage: str
    unsubscribe: str
    ratings: str
    rate: Callable[[int], str]  # a stored paper's uid -> its rating link, without the vote


@dataclass(frozen=True, slots=True)
class Section:
    """Papers chosen for one interest; ``name`` is None for a reader without interests."""

    name: str | None
    papers: tuple[PaperView, ...]


def sections_of(papers: tuple[PaperView, ...]) -> tuple[Section, ...]:
    """Group papers by interest, sections in the order of their best paper."""
    order: dict[str | None, list[PaperView]] = {}
    for paper in papers:
        order.setdefault(paper.section, []).append(paper)
    return tuple(Section(name, tuple(group)) for name, group in order.items())


def digest_view(
    digest: Digest,
    *,
    generated_at: datetime,
    base_url: str | None = None,
    shown: int | None = None,
    token: str | None = None,
    pages: bool = True,
    feeds: bool = True,
    links: ReaderLinks | None = None,
) -> DigestView:
    """The view of a digest; ``token`` is the subscriber's feed token for served links.

    ``pages`` and ``feeds`` say whether the subscriber's page and feed are written: a link
    is given only to what exists (and only with a ``base_url`` to reach it by). ``links``:
    the reader's signed links, shown in the footer and beside every paper.
    """
    rate = links.rate if links else None
    papers = tuple(
        paper_view(i, item, rate(item.paper.uid) if rate else None)
        for i, item in enumerate(digest.papers, start=1)
    )
    suffix = f"?token={token}" if token else ""
    return DigestView(
        subscriber=digest.subscriber,
        date=digest.date,
        slug=digest.slug,
        papers=papers,
        shown=len(papers) if shown is None else min(shown, len(papers)),
        candidates=digest.candidates,
        page_url=f"{base_url}/pages/{digest.subscriber}/{digest.slug}.html{suffix}"
        if base_url and pages
        else None,
        feed_url=f"{base_url}/feeds/{digest.subscriber}.atom{suffix}"
        if base_url and feeds
        else None,
        generated_at=generated_at,
        manage_url=links.manage if links else None,
        unsubscribe_url=links.unsubscribe if links else None,
        ratings_url=links.ratings if links else None,
    )
