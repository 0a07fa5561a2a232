"""Parse arXiv API query responses (Atom 1.0, both the legacy and the 2026 serialisation).

Pure: bytes in, a Listing out. The API reports some errors with HTTP 200 and a single
entry titled ``Error`` whose id is under ``arxiv.org/api/errors``: that is raised as a
ParseError carrying arXiv's own message, never read as a paper.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from digest.errors import ParseError
from digest.ids import parse_arxiv_id
from digest.models import Paper
from digest.sources.parse.arxiv_rss import ARXIV
from digest.sources.parse.dates import iso_day
from digest.sources.parse.listing import Listing
from digest.sources.parse.xml import ATOM, OPENSEARCH, atom_authors, parse_xml, text_of


def parse_arxiv_api(content: bytes, origin: str) -> Listing:
    root = parse_xml(content, origin)
    if root.tag != f"{ATOM}feed":
        raise ParseError(f"{origin}: expected an arXiv API Atom feed, got <{root.tag}>")
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        if "/api/errors" in text_of(entry.find(f"{ATOM}id")):
            message = text_of(entry.find(f"{ATOM}summary")) or "unspecified error"
            raise ParseError(
                f"{origin}: the arXiv API answered with an error: {message}",
                hint="check the source's query; arXiv returns this with HTTP 200",
            )
    total = text_of(root.find(f"{OPENSEARCH}totalResults"))
    listing = Listing(total_results=int(total) if total.isdigit() else None)
    listing.collect(entries, _entry, origin, "entry")
    return listing


def _entry(entry: Element) -> Paper:
    entry_id = text_of(entry.find(f"{ATOM}id"))
    parsed = parse_arxiv_id(entry_id)
    if parsed is None:
        raise ValueError(f"id {entry_id!r} is not an arXiv id")
    arxiv_id, version = parsed
    title = text_of(entry.find(f"{ATOM}title"))
    if not title:
        raise ValueError(f"{arxiv_id} has no title")
    links = entry.findall(f"{ATOM}link")
    # The PDF link is known by its type: the title="pdf" attribute has come and gone.
    pdf = next((link.get("href") for link in links if link.get("type") == "application/pdf"), None)
    primary = entry.find(f"{ARXIV}primary_category")
    categories = [c.get("term", "") for c in entry.findall(f"{ATOM}category")]
    if primary is not None and primary.get("term"):
        categories.insert(0, primary.get("term", ""))
    return Paper.from_source(
        title=title,
        abstract=text_of(entry.find(f"{ATOM}summary")),
        arxiv_id=arxiv_id,
        version=version,
        authors=atom_authors(entry),
        categories=tuple(dict.fromkeys(c for c in categories if _is_arxiv_category(c))),
        published=iso_day(text_of(entry.find(f"{ATOM}published"))),
        pdf_url=pdf,
        doi=text_of(entry.find(f"{ARXIV}doi")) or None,
        journal_ref=text_of(entry.find(f"{ARXIV}journal_ref")) or None,
        comment=text_of(entry.find(f"{ARXIV}comment")) or None,
    )


def _is_arxiv_category(term: str) -> bool:
    # Entries also carry ACM and MSC codes (I.2.6, 68T05), which are not arXiv categories.
    return bool(term) and term[0].isalpha() and not term[:1].isupper()
