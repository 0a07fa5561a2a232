"""The ``page`` and ``markdown`` channels: a digest kept as a web page or a Markdown file."""

from __future__ import annotations

from digest.channels.base import DeliveryContext
from digest.channels.files import atomic_write
from digest.config import SubscriberSettings
from digest.models import Digest
from digest.render.pages import IndexEntry, render_index, render_markdown, render_page


class PageChannel:
    """Writes ``<out>/pages/<subscriber>/<date>.html`` and refreshes that folder's index."""

    name = "page"

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        folder = context.out_dir / "pages" / subscriber.name
        path = folder / f"{digest.slug}.html"
        atomic_write(path, render_page(context.env, context.view(digest, subscriber)))
        done = set(context.store.delivered_digests(subscriber.name, self.name))
        done.add((digest.date, digest.seq))
        entries = [IndexEntry(day, seq) for day, seq in sorted(done, reverse=True)]
        feeds = []
        if "feed" in subscriber.channels:
            feeds = [
                ("RSS feed", f"../../feeds/{subscriber.name}.rss"),
                ("Atom feed", f"../../feeds/{subscriber.name}.atom"),
            ]
        atomic_write(
            folder / "index.html", render_index(context.env, subscriber.name, entries, feeds)
        )
        return str(path)


class MarkdownChannel:
    """Writes ``<out>/markdown/<subscriber>/<date>.md`` for chat tools and wikis."""

    name = "markdown"

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        path = context.out_dir / "markdown" / subscriber.name / f"{digest.slug}.md"
        atomic_write(path, render_markdown(context.env, context.view(digest, subscriber)))
        return str(path)
