"""What a channel is: something that delivers a recorded digest and says where it went.

A channel raises DeliveryError (or any OSError) when it could not deliver; the pipeline
then leaves the delivery pending and records nothing as delivered. It returns only once
the digest is really out: the file renamed into place, the mail server's 250.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from jinja2 import Environment

from digest.config import Config, SubscriberSettings
from digest.models import Digest
from digest.render.context import DigestView, digest_view
from digest.render.email import RenderedEmail, build_message
from digest.store import Store


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """Everything a channel may use: settings, templates, the store, the run's clock."""

    config: Config
    env: Environment
    store: Store
    now: datetime

    @property
    def out_dir(self) -> Path:
        return self.config.resolve(self.config.output.dir)

    def email(self, digest: Digest, subscriber: SubscriberSettings) -> RenderedEmail:
        """The digest as the complete email message for this subscriber."""
        return build_message(
            self.env,
            self.view(digest, subscriber),
            settings=self.config.email,
            to=subscriber.email,
            now=self.now,
        )

    def view(self, digest: Digest, subscriber: SubscriberSettings | None = None) -> DigestView:
        return digest_view(
            digest,
            generated_at=self.now.astimezone(self.config.zone),
            base_url=self.config.output.base_url,
            token=subscriber.feed_token if subscriber else None,
        )


class Channel(Protocol):
    name: str

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        """Deliver ``digest``; return a short description of where it went."""
        ...
