"""The ``feed`` channel: the subscriber's RSS and Atom files, rebuilt from the ledger."""

from __future__ import annotations

from digest.channels.base import DeliveryContext
from digest.channels.files import atomic_write
from digest.config import SubscriberSettings
from digest.models import Digest
from digest.render.feeds import build_feeds


class FeedChannel:
    """Writes ``<out>/feeds/<subscriber>.rss`` and ``.atom`` with the latest papers."""

    name = "feed"

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        items = context.store.feed_items(
            subscriber.name, context.config.output.feed_items, include_digest=digest.digest_id
        )
        rss, atom = build_feeds(
            subscriber.name,
            items,
            now=context.now,
            base_url=context.config.output.base_url,
            token=subscriber.feed_token,
            pages="page" in subscriber.channels,
            rate=links.rate if (links := context.reader_links(subscriber.name)) else None,
        )
        folder = context.out_dir / "feeds"
        atomic_write(folder / f"{subscriber.name}.rss", rss)
        atomic_write(folder / f"{subscriber.name}.atom", atom)
        return f"{folder / subscriber.name}.rss and .atom"
