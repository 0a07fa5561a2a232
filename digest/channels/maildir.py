"""The ``email`` channel into a Maildir: a folder any local mail client can open.

Each message is written and synced into ``tmp/``, then renamed into ``new/`` (the Maildir
way), so it is either wholly there or not at all. Its name is derived from its Message-ID,
so a message already there (a run killed after the rename, before the store recorded it)
is not added a second time: a Maildir gets each message once, whatever kills a run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from digest.channels.base import DeliveryContext
from digest.channels.files import sync_directory
from digest.config import SubscriberSettings
from digest.models import Digest


def local_line_endings(message: bytes) -> bytes:
    """The message with LF line breaks, as mail clients expect of a file on disk.

    A message goes over SMTP with CRLF (RFC 5322), but a Maildir file is read as local
    text: mutt and others would show every CR as ``^M``. The rendered email has no bare
    CR (quoted-printable encodes one as ``=0D``), so every CR is part of a CRLF.
    """
    return message.replace(b"\r\n", b"\n")


def maildir_name(message_id: str) -> str:
    """The file name of a message in the Maildir, the same every time it is delivered.

    Maildir names need only be unique; one derived from the Message-ID (itself derived from
    the subscriber and the digest) lets a delivery see that an earlier, unrecorded one (a
    run killed after the rename) already put this message there.
    """
    return "digest-" + hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".paper-digest"


class MaildirChannel:
    name = "email"

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = context.email(digest, subscriber)
        name = maildir_name(message["Message-ID"] or f"{subscriber.name}/{digest.slug}")
        return self.put(message.as_bytes(), name)

    def put(self, message: bytes, name: str) -> str:
        """Put one message (its bytes, as sent over SMTP) into ``new/`` as ``name``, unless
        a message of that name is there already; return where it is."""
        for folder in ("tmp", "new", "cur"):  # with the folders above it (out/ on a first run)
            (self.path / folder).mkdir(parents=True, exist_ok=True)
        earlier = self.find(name)
        if earlier is not None:
            return f"{earlier} (there already)"
        temporary, final = self.path / "tmp" / name, self.path / "new" / name
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(local_line_endings(message))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)  # the moment of delivery, as the Maildir format defines it
        sync_directory(final.parent)
        return str(final)

    def find(self, name: str) -> Path | None:
        """The message called ``name`` if it is in the Maildir: in new/, or in cur/ where a
        mail client moved it once seen, with its flags after a colon."""
        if (self.path / "new" / name).exists():
            return self.path / "new" / name
        with os.scandir(self.path / "cur") as entries:
            for entry in entries:
                if entry.name == name or entry.name.startswith(name + ":"):
                    return Path(entry.path)
        return None
