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


def local_line_endings(message: bytes) -> bytes:
    """The message with LF line breaks, as mail clients expect of a file on disk.

    A message goes over SMTP with CRLF (RFC 5322), but a Maildir file is read as local
    text: mutt and others would show every CR as ``^M``. The rendered email has no bare
    CR (quoted-printable encodes one as ``=0D``), so every CR is part of a CRLF.
    """
    return message.replace(b"\r\n", b"\n")


class MaildirChannel:
    name = "email"

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = context.email(digest, subscriber)
        # The stdlib creates the Maildir itself but not the folders above it (out/ on a
        # first run).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=True)
        key = box.add(local_line_endings(message.as_bytes()))  # a plain message lands in new/
        return str(self.path / "new" / key)
