"""Sources: where papers come from. Each kind fetches (I/O) and hands bytes to a pure parser.

| kind        | module         | reads                                                     |
| ----------- | -------------- | --------------------------------------------------------- |
| file        | file.py        | local listings of any format (captures, JSON, feeds)      |
| hf_daily    | hf_daily.py    | Hugging Face Daily Papers API, day by day, with catch-up  |
| arxiv_rss   | arxiv_rss.py   | arXiv's announcement feed for some categories             |
| arxiv_api   | arxiv_api.py   | an arXiv API search, caught up after downtime             |
| feed        | feed.py        | any RSS or Atom URL                                       |
"""

from __future__ import annotations

from digest.config import (
    ArxivApiSettings,
    ArxivRssSettings,
    Config,
    FeedSettings,
    FileSourceSettings,
    HfDailySettings,
)
from digest.sources.arxiv_api import ArxivApiSource
from digest.sources.arxiv_rss import ArxivRssSource
from digest.sources.base import FetchContext, Source, SourceResult
from digest.sources.feed import FeedSource
from digest.sources.file import FileSource
from digest.sources.hf_daily import HfDailySource

__all__ = ["FetchContext", "Source", "SourceResult", "build_sources"]


def build_sources(config: Config) -> list[Source]:
    """One source object for each enabled ``[[sources]]`` entry, in config order."""
    sources: list[Source] = []
    for settings in config.sources:
        if not settings.enabled:
            continue
        if isinstance(settings, FileSourceSettings):
            sources.append(FileSource(settings, config.folder))
        elif isinstance(settings, HfDailySettings):
            sources.append(HfDailySource(settings))
        elif isinstance(settings, ArxivRssSettings):
            sources.append(ArxivRssSource(settings))
        elif isinstance(settings, ArxivApiSettings):
            sources.append(ArxivApiSource(settings))
        elif isinstance(settings, FeedSettings):
            sources.append(FeedSource(settings))
    return sources
