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
from digest.render.email import build_message


class MaildirChannel:
    name = "email"

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = build_message(
            context.env,
            context.view(digest),
            settings=context.config.email,
            to=subscriber.email,
            now=context.now,
        )
        box = mailbox.Maildir(self.path, create=True)
        key = box.add(mailbox.MaildirMessage(message))
        return str(self.path / "new" / key)
