"""Render a subscriber's RSS 2.0 and Atom feeds from the papers delivered to it.

Pure: feed items and a fixed ``now`` in, XML bytes out. The feeds are rebuilt from the
ledger on every delivery, so writing them is idempotent and a lost file comes back on the
next run. Output is deterministic: feedgen's clock is replaced by the newest item's time,
and entries keep the order given (``order="append"``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, time

from feedgen.feed import FeedGenerator
from markupsafe import escape

from digest.models import FeedItem
from digest.render.context import paper_view

# Characters XML 1.0 forbids; a source's stray control character must not break a feed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def build_feeds(
    subscriber: str,
    items: list[FeedItem],
    *,
    now: datetime,
    base_url: str | None = None,
    token: str | None = None,
    pages: bool = True,
    rate: Callable[[int], str] | None = None,
) -> tuple[bytes, bytes]:
    """(RSS, Atom) for ``subscriber``, newest papers first; ``token`` goes into served links.

    The feed's home is the subscriber's pages when ``pages`` says they are written.
    ``rate``: a stored paper's uid to its signed rating link (without the vote); with it,
    each entry's content ends with "More like this" and "Less like this" links."""
    feed = FeedGenerator()
    suffix = f"?token={token}" if token else ""
    feed_base = f"{base_url}/feeds/{subscriber}" if base_url else None
    home = "https://arxiv.org/"
    if base_url and pages:
        home = f"{base_url}/pages/{subscriber}/index.html{suffix}"
    # The id stays the same whether or not a token is set: it names the feed, not the URL.
    feed.id(f"{feed_base}.atom" if feed_base else f"urn:paper-digest:feed:{subscriber}")
    feed.title(f"Paper digest for {subscriber}")
    feed.subtitle(f"New papers chosen for {subscriber} by paper-digest")
    feed.link(href=home, rel="alternate")
    if feed_base:
        feed.link(href=f"{feed_base}.atom{suffix}", rel="self")
    feed.language("en")
    feed.generator("paper-digest")
    stamps = [_stamp(item) for item in items]
    updated = max(stamps, default=now)
    feed.updated(updated)
    feed.lastBuildDate(updated)
    for item, stamp in zip(items, stamps, strict=True):
        view = paper_view(0, item.scored)
        entry = feed.add_entry(order="append")
        # The arXiv page is a permanent id; a paper known only by title gets a stable URN.
        guid = view.link if view.arxiv_id else title_urn(view.ref)
        entry.id(guid)
        entry.guid(guid, permalink=bool(view.arxiv_id))
        entry.title(xml_text(view.title))
        entry.link(href=view.link, rel="alternate")
        for author in view.authors[:20]:
            entry.author(name=xml_text(author))
        for category in view.categories:
            entry.category(term=xml_text(category))
        summary = view.abstract
        if view.why:
            summary = f"Why: {view.why}.\n\n{summary}"
        if view.section:
            entry.category(term=xml_text(view.section), label=xml_text(view.section))
        entry.summary(xml_text(summary))
        if rate is not None:
            content = rated_content(summary, rate(item.scored.paper.uid))
            entry.content(xml_text(content), type="html")
        entry.published(stamp)
        entry.updated(stamp)
    return feed.rss_str(pretty=True), feed.atom_str(pretty=True)


def rated_content(summary: str, rate_url: str) -> str:
    """An entry's HTML content: its summary, escaped (it is the source's text), and the
    paper's rating links."""
    paragraphs = "".join(f"<p>{escape(part)}</p>" for part in summary.split("\n\n") if part)
    links = (
        f'<p><a href="{escape(rate_url)}/up">More like this</a> · '
        f'<a href="{escape(rate_url)}/down">Less like this</a></p>'
    )
    return paragraphs + links


def title_urn(ref: str) -> str:
    return f"urn:paper-digest:{hashlib.sha256(ref.encode()).hexdigest()[:24]}"


def _stamp(item: FeedItem) -> datetime:
    if item.delivered_at is not None:
        return item.delivered_at
    return datetime.combine(item.digest_date, time(0, 0), tzinfo=UTC)
