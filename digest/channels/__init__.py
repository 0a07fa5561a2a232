"""Channels: where a digest goes. Each delivers and confirms; the pipeline records."""

from __future__ import annotations

from digest.channels.archive import MarkdownChannel, PageChannel
from digest.channels.base import Channel, DeliveryContext
from digest.channels.email_files import EmlFileChannel
from digest.channels.feed import FeedChannel
from digest.config import Config

__all__ = ["Channel", "DeliveryContext", "build_channels"]


def build_channels(config: Config) -> dict[str, Channel]:
    """The channel for each name a subscriber can list in ``channels``."""
    channels: list[Channel] = [EmlFileChannel(), FeedChannel(), PageChannel(), MarkdownChannel()]
    return {channel.name: channel for channel in channels}
