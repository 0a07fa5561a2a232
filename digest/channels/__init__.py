"""Channels: where a digest goes. Each delivers and confirms; the pipeline records."""

from __future__ import annotations

from digest.channels.archive import MarkdownChannel, PageChannel
from digest.channels.base import Channel, DeliveryContext
from digest.channels.email_files import EmlFileChannel
from digest.channels.feed import FeedChannel
from digest.channels.maildir import MaildirChannel
from digest.channels.smtp import SmtpChannel
from digest.config import Config

__all__ = ["Channel", "DeliveryContext", "build_channels", "close_channels"]


def build_channels(config: Config, *, dry_run: bool = False) -> dict[str, Channel]:
    """The channel for each name a subscriber can list in ``channels``.

    ``email`` goes through the configured transport; a dry run never sends, so there it
    writes .eml files instead.
    """
    transport = "files" if dry_run else config.email.effective_transport
    email: Channel
    if transport == "smtp":
        email = SmtpChannel(config.email, config.folder)
    elif transport == "maildir":
        email = MaildirChannel(config.resolve(config.email.maildir))
    else:
        email = EmlFileChannel()
    channels: list[Channel] = [email, FeedChannel(), PageChannel(), MarkdownChannel()]
    return {channel.name: channel for channel in channels}


def close_channels(channels: dict[str, Channel]) -> None:
    """Let channels that hold a connection (SMTP) say goodbye."""
    for channel in channels.values():
        close = getattr(channel, "close", None)
        if close is not None:
            close()
