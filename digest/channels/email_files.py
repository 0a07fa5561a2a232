"""The ``email`` channel without a mail server: one complete .eml file per digest."""

from __future__ import annotations

from digest.channels.base import DeliveryContext
from digest.channels.files import atomic_write
from digest.config import SubscriberSettings
from digest.models import Digest


class EmlFileChannel:
    """Writes ``<out>/email/<subscriber>/<date>.eml``, openable by any mail client."""

    name = "email"

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = context.email(digest, subscriber)
        path = context.out_dir / "email" / subscriber.name / f"{digest.slug}.eml"
        atomic_write(path, message.as_bytes())
        return str(path)
