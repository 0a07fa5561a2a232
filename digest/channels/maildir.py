"""The ``email`` channel into a Maildir: a folder any local mail client can open.

The stdlib writes each message into ``tmp/`` and renames it into ``new/``, so a message
is either wholly there or not at all.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from digest.channels.base import DeliveryContext
from digest.config import SubscriberSettings
from digest.models import Digest


class MaildirChannel:
    name = "email"

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = context.email(digest, subscriber)
        box = mailbox.Maildir(self.path, create=True)
        key = box.add(message.as_bytes())  # a plain message lands in new/
        return str(self.path / "new" / key)
