"""What a channel is: something that delivers a recorded digest and says where it went.

A channel raises DeliveryError (or any OSError) when it could not deliver; the pipeline
then leaves the delivery pending and records nothing as delivered. It returns only once
the digest is really out: the file renamed into place, the mail server's 250.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache, partial
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Protocol

from jinja2 import Environment

from digest.config import Config, SubscriberSettings
from digest.links import Links, links_for
from digest.models import Digest, Scored
from digest.render.context import DigestView, ReaderLinks, digest_view
from digest.render.email import (
    RenderedEmail,
    build_message,
    html_size,
    parts_that_fit,
    render_html,
)
from digest.report import Redactor, redactor_for
from digest.store import Store


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """Everything a channel may use: settings, templates, the store, the run's clock."""

    config: Config
    env: Environment
    store: Store
    now: datetime
    # The view and HTML of the last digest measured by ``email_parts``, which the email
    # channel then sends: measured before it is recorded, it is not built twice.
    _measured: dict[tuple[object, ...], tuple[DigestView, str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The readers' link keys read so far, the config's signed links (once), and the links
    # of the reader last shown (its digest is viewed several times: measured, sent, paged).
    _keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _signing: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def out_dir(self) -> Path:
        return self.config.resolve(self.config.output.dir)

    def email(self, digest: Digest, subscriber: SubscriberSettings) -> RenderedEmail:
        """The digest as the complete email message for this subscriber."""
        measured = self._measured.pop(_measure_key(digest, subscriber), None)
        view, html = measured or (self.view(digest, subscriber), None)
        return build_message(
            self.env,
            view,
            settings=self.config.email,
            to=subscriber.email,
            now=self.now,
            html=html,
        )

    def view(self, digest: Digest, subscriber: SubscriberSettings | None = None) -> DigestView:
        """The digest as templates see it; it links the subscriber's page and feed only
        when they are written, so that no link of an email leads nowhere."""
        return digest_view(
            digest,
            generated_at=self.now.astimezone(self.config.zone),
            base_url=self.config.output.base_url,
            token=subscriber.feed_token if subscriber else None,
            pages=subscriber is None or "page" in subscriber.channels,
            feeds=subscriber is None or "feed" in subscriber.channels,
            links=self.reader_links(subscriber.name) if subscriber else None,
        )

    @property
    def redactor(self) -> Redactor:
        """The secrets to keep out of what is recorded (made once: it reads the store)."""
        if "redactor" not in self._signing:
            self._signing["redactor"] = redactor_for(self.config, self.store)
        return self._signing["redactor"]  # type: ignore[return-value]

    @property
    def links(self) -> Links | None:
        """The config's signed links, or None when it signs none (no base_url or secret)."""
        if "links" not in self._signing:
            self._signing["links"] = links_for(self.config)
        return self._signing["links"]  # type: ignore[return-value]

    def prepare_links(self, names: Sequence[str]) -> None:
        """Read the link keys of these readers at once (making those missing), so that a
        batch of digests costs one query, not one per reader."""
        missing = [name for name in names if name not in self._keys]
        if missing and self.links is not None:
            self._keys.update(self.store.reader_keys_of(missing, self.now))

    def reader_links(self, name: str) -> ReaderLinks | None:
        """The signed links of reader ``name``; each paper's rating link is signed once."""
        links = self.links
        if links is None:
            return None
        last = self._signing.get("reader")
        if isinstance(last, tuple) and last[0] == name:
            return last[1]  # type: ignore[no-any-return]
        self.prepare_links([name])
        key = self._keys[name]
        found = ReaderLinks(
            manage=links.manage(key),
            unsubscribe=links.unsubscribe(key),
            ratings=links.ratings(key),
            rate=cache(partial(links.rate_base, key)),
        )
        self._signing["reader"] = (name, found)
        return found

    def email_parts(
        self, digest: Digest, subscriber: SubscriberSettings
    ) -> list[tuple[Scored, ...]]:
        """The digest's papers cut into consecutive parts, each one email that stays under
        the clipping limit: what a reader is recorded as sent is what its emails show.
        A digest that fits is one part (and its HTML is then rendered once, not twice)."""
        papers = digest.papers
        self._measured.clear()

        def size(start: int, end: int) -> int:
            part = replace(digest, papers=papers[start:end])
            view = self.view(part, subscriber)
            html = render_html(self.env, view)
            if start == 0 and end == len(papers):  # the whole digest: the email if it fits
                self._measured[_measure_key(part, subscriber)] = (view, html)
            return html_size(html)

        sizes = parts_that_fit(len(papers), size)
        bounds = list(accumulate(sizes, initial=0))
        return [papers[a:b] for a, b in pairwise(bounds)]


def _measure_key(digest: Digest, subscriber: SubscriberSettings) -> tuple[object, ...]:
    """What makes a digest's view, cheap to compare: the papers by identity (the digest
    recorded from a measured draft holds the very same objects), not by their contents."""
    return (
        subscriber.name,
        digest.date,
        digest.seq,
        digest.candidates,
        tuple(map(id, digest.papers)),
    )


class Channel(Protocol):
    name: str

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        """Deliver ``digest``; return a short description of where it went."""
        ...
