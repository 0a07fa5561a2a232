"""Sources: where papers come from. Each kind fetches (I/O) and hands bytes to a pure parser."""

from __future__ import annotations

from digest.config import Config
from digest.config import FileSource as FileSourceSettings
from digest.sources.base import FetchContext, Source, SourceResult
from digest.sources.file import FileSource

__all__ = ["FetchContext", "Source", "SourceResult", "build_sources"]


def build_sources(config: Config) -> list[Source]:
    """One source object for each enabled ``[[sources]]`` entry, in config order."""
    sources: list[Source] = []
    for settings in config.sources:
        if not settings.enabled:
            continue
        if isinstance(settings, FileSourceSettings):
            sources.append(FileSource(settings, config.folder))
    return sources
