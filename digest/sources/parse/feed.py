"""Parse any RSS or Atom feed (bioRxiv, journals, blogs) into papers, leniently.

Pure: bytes in, a Listing out. feedparser copes with the feeds found in the wild (wrong
dates, mixed namespaces, HTML in descriptions); entity declarations are refused before it
sees the bytes, as defusedxml would. A paper's id is its arXiv id when a link or id names
one, else its DOI when the feed gives one, else its title.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import feedparser

from digest.errors import ParseError
from digest.ids import find_arxiv_id, parse_arxiv_id, trailing_arxiv_id
from digest.models import Paper
from digest.sources.parse.listing import Listing
from digest.sources.parse.xml import html_to_text

_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)


def parse_feed(content: bytes, origin: str) -> Listing:
    head = content[:2048].lstrip().lower()
    if not head:
        raise ParseError(f"{origin}: the feed is empty")
    if head.startswith((b"<!doctype html", b"<html")):
        raise ParseError(f"{origin}: an HTML page, not a feed", hint="check the feed's URL")
    if b"<!entity" in content[:65536].lower():
        raise ParseError(f"{origin}: refused unsafe XML (entity declarations)")
    parsed = feedparser.parse(content)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        problem = parsed.get("bozo_exception") or "no RSS or Atom structure"
        raise ParseError(f"{origin}: not a readable RSS or Atom feed: {problem}")
    listing = Listing()
    listing.collect(parsed.entries, _entry, origin, "entry")
    return listing


def _entry(entry: Any) -> Paper:
    title = str(entry.get("title", "")).strip()
    if not title:
        raise ValueError("no title")
    link = str(entry.get("link", ""))
    entry_id = str(entry.get("id", ""))
    parsed = (
        parse_arxiv_id(entry_id)
        or parse_arxiv_id(link)
        or _found(find_arxiv_id(link) or find_arxiv_id(entry_id))
        or trailing_arxiv_id(link)
    )
    summary = entry.get("summary") or ""
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value", "")
    return Paper.from_source(
        title=html_to_text(title),
        abstract=html_to_text(str(summary)),
        arxiv_id=parsed[0] if parsed else None,
        version=parsed[1] if parsed else None,
        authors=tuple(a.get("name", "").strip() for a in entry.get("authors", []) if a.get("name")),
        categories=tuple(t.get("term", "") for t in entry.get("tags", []) if t.get("term"))[:10],
        published=_day(entry.get("published_parsed") or entry.get("updated_parsed")),
        url=link or None,
        doi=_doi(entry),
    )


def _found(arxiv_id: str | None) -> tuple[str, int | None] | None:
    return (arxiv_id, None) if arxiv_id else None


def _doi(entry: Any) -> str | None:
    for key in ("prism_doi", "dc_identifier", "id", "link"):
        match = _DOI.search(str(entry.get(key, "")))
        if match:
            return match.group(1).rstrip(".").lower()
    return None


def _day(value: Any) -> date | None:
    try:
        return date(value.tm_year, value.tm_mon, value.tm_mday) if value else None
    except (AttributeError, ValueError):
        return None
