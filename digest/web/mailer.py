"""Sending one email from the reader pages (a confirmation, a manage link), through the
transport the digests use (``[email] transport``: smtp, files or maildir).

The channels' own code does the sending: the SMTP transaction of ``SmtpChannel.send``
(its replies classified the same way), the Maildir's write-then-rename, the files'
atomic write. A page waits for its answer, so SMTP is tried once, without the run's
retries and backoff: a failure is a ``MailNotSent`` the page turns into "try later".
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from email.message import EmailMessage

from digest.channels.files import atomic_write
from digest.channels.maildir import MaildirChannel, maildir_name
from digest.channels.smtp import SmtpChannel
from digest.config import Config
from digest.errors import DigestError

log = logging.getLogger("digest")

# Sign-up mails written as files go beside the digests' folders; a subscriber's name
# cannot start with "_", so this folder is never a reader's.
FILES_FOLDER = "_signup"


class MailNotSent(Exception):
    """The mail could not be handed over; the reason is logged, not shown to the visitor."""


def send_one(config: Config, message: EmailMessage, to: str, now: datetime) -> str:
    """Hand ``message`` to the configured transport for ``to``; return where it went, or
    raise MailNotSent."""
    transport = config.email.effective_transport
    message_id = str(message["Message-ID"] or "")
    try:
        if transport == "smtp":
            return _by_smtp(config, message, to)
        data = bytes(message)
        if transport == "maildir":
            return MaildirChannel(config.resolve(config.email.maildir)).put(
                data, maildir_name(message_id)
            )
        folder = config.resolve(config.output.dir) / "email" / FILES_FOLDER
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
        path = folder / f"{now:%Y%m%dT%H%M%S}-{digest}.eml"
        atomic_write(path, data)
        return str(path)
    except (DigestError, OSError) as exc:
        log.error("web: could not send a %s mail: %s", transport, exc)
        raise MailNotSent(str(exc)) from None


def _by_smtp(config: Config, message: EmailMessage, to: str) -> str:
    settings = config.email.model_copy(update={"retries": 0})
    channel = SmtpChannel(settings, config.folder)
    try:
        reply = channel.send(message, to)  # type: ignore[arg-type]  # needs as_bytes() only
    finally:
        channel.close()
    return f"{to} via {channel.server} ({reply})"
