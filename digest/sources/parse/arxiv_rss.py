"""Parse arXiv's announcement feeds (rss.arxiv.org, RSS 2.0 and Atom, format of 2024 on).

Pure: bytes in, a Listing out, XML read with defusedxml. Each item carries its announce
type (new, cross, replace, replace-cross) in ``Paper.announce_type``; the source decides
which types count. An empty channel (weekends, holidays) is a valid, empty listing. The
channel's date is US-Eastern midnight of the announcement day and becomes ``listed_on``.
"""

from __future__ import annotations

import re
from datetime import date
from xml.etree.ElementTree import Element

from digest.errors import ParseError
from digest.ids import find_arxiv_id, parse_arxiv_id, trailing_arxiv_id
from digest.models import Paper
from digest.sources.parse.dates import iso_day, rfc822_day
from digest.sources.parse.listing import Listing
from digest.sources.parse.xml import ATOM, atom_authors, html_to_text, parse_xml, text_of

ARXIV = "{http://arxiv.org/schemas/atom}"
DC = "{http://purl.org/dc/elements/1.1/}"

# "arXiv:2205.06398v2 Announce Type: cross \nAbstract: ..." (the newline is sometimes lost)
_DESCRIPTION = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>\S+)\s+Abstract:\s*(?P<abstract>.*)$",
    re.DOTALL,
)


def parse_arxiv_rss(content: bytes, origin: str) -> Listing:
    """Parse an arXiv RSS 2.0 or Atom announcement feed."""
    root = parse_xml(content, origin)
    if root.tag == "rss":
        return _parse_rss(root, origin)
    if root.tag == f"{ATOM}feed":
        return _parse_atom(root, origin)
    raise ParseError(f"{origin}: expected an arXiv RSS or Atom feed, got <{root.tag}>")


def _parse_rss(root: Element, origin: str) -> Listing:
    channel = root.find("channel")
    if channel is None:
        raise ParseError(f"{origin}: RSS without a <channel>")
    title = text_of(channel.find("title"))
    if title.startswith("Feed error"):
        raise ParseError(
            f"{origin}: arXiv answered with an error feed: "
            f"{text_of(channel.find('description')) or title}",
            hint="check the category names (e.g. cs.LG, stat.ML) in the source's config",
        )
    listing = Listing(listed_on=rfc822_day(text_of(channel.find("pubDate"))))
    listing.collect(
        channel.findall("item"), lambda i: _rss_item(i, listing.listed_on), origin, "item"
    )
    return listing


def _rss_item(item: Element, listed_on: date | None) -> Paper:
    title = text_of(item.find("title"))
    description = text_of(item.find("description"))
    link = text_of(item.find("link"))
    guid = text_of(item.find("guid"))
    announce_type = text_of(item.find(f"{ARXIV}announce_type")) or None
    abstract = description
    parsed = (
        parse_arxiv_id(guid)
        or parse_arxiv_id(link)
        or _linked_id(link)
        or _linked_id(guid)
        or trailing_arxiv_id(link)
        or trailing_arxiv_id(guid)
    )
    match = _DESCRIPTION.match(description)
    if match:
        parsed = parse_arxiv_id(match.group("id")) or parsed
        announce_type = announce_type or match.group("type")
        abstract = match.group("abstract")
    else:
        abstract = html_to_text(description)  # mirrors put HTML in their descriptions
    if parsed is None:
        raise ValueError(f"no arXiv id in link {link!r} or guid {guid!r}")
    if not title:
        raise ValueError(f"{parsed[0]} has no title")
    arxiv_id, version = parsed
    return Paper.from_source(
        title=title,
        abstract=abstract,
        arxiv_id=arxiv_id,
        version=version,
        authors=split_creators(text_of(item.find(f"{DC}creator"))),
        categories=tuple(text_of(c) for c in item.findall("category") if text_of(c)),
        published=listed_on if announce_type in {"new", "cross"} else None,
        url=link or None,
        doi=text_of(item.find(f"{ARXIV}DOI")) or None,
        journal_ref=text_of(item.find(f"{ARXIV}journal_reference")) or None,
        announce_type=announce_type,
    )


def _parse_atom(root: Element, origin: str) -> Listing:
    listing = Listing(listed_on=iso_day(text_of(root.find(f"{ATOM}updated"))))
    entries = root.findall(f"{ATOM}entry")
    listing.collect(entries, lambda e: _atom_entry(e, listing.listed_on), origin, "entry")
    return listing


def _atom_entry(entry: Element, listed_on: date | None) -> Paper:
    entry_id = text_of(entry.find(f"{ATOM}id"))
    summary = text_of(entry.find(f"{ATOM}summary"))
    announce_type = text_of(entry.find(f"{ARXIV}announce_type")) or None
    parsed = parse_arxiv_id(entry_id)
    abstract = summary
    match = _DESCRIPTION.match(summary)
    if match:
        parsed = parse_arxiv_id(match.group("id")) or parsed
        announce_type = announce_type or match.group("type")
        abstract = match.group("abstract")
    if parsed is None:
        link = next((link.get("href", "") for link in entry.findall(f"{ATOM}link")), "")
        found = find_arxiv_id(link)
        parsed = (found, None) if found else None
    if parsed is None:
        raise ValueError(f"no arXiv id in {entry_id!r}")
    arxiv_id, version = parsed
    return Paper.from_source(
        title=text_of(entry.find(f"{ATOM}title")),
        abstract=abstract,
        arxiv_id=arxiv_id,
        version=version,
        authors=atom_authors(entry) or split_creators(text_of(entry.find(f"{DC}creator"))),
        categories=tuple(
            c.get("term", "") for c in entry.findall(f"{ATOM}category") if c.get("term")
        ),
        published=listed_on if announce_type in {"new", "cross"} else None,
        announce_type=announce_type,
    )


def _linked_id(url: str) -> tuple[str, int | None] | None:
    found = find_arxiv_id(url)
    return (found, None) if found else None


def split_creators(creators: str) -> tuple[str, ...]:
    """Split arXiv's one-string author list, dropping parenthesised affiliations.

    ``"A Smith (MIT, CMU), B Jones,  C"`` gives ``("A Smith", "B Jones", "C")``: commas
    inside parentheses belong to the affiliation, not the list.
    """
    names: list[str] = []
    depth, current = 0, []
    for char in creators:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            names.append("".join(current))
            current = []
            continue
        if depth == 0 and char != ")":
            current.append(char)
    names.append("".join(current))
    return tuple(" ".join(name.split()) for name in names if name.strip())
