"""The ``file`` source: local listings matched by a glob, in any format we can parse."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

from digest.config import FileSourceSettings
from digest.errors import ParseError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.detect import parse_listing

log = logging.getLogger("digest")


class FileSource:
    """Reads every file the glob matches, in name order; one bad file spoils only itself."""

    def __init__(self, settings: FileSourceSettings, folder: Path) -> None:
        self.name = settings.name
        self.settings = settings
        self.pattern = (
            settings.path if Path(settings.path).is_absolute() else str(folder / settings.path)
        )

    def matching_files(self) -> list[Path]:
        """The files the glob matches now, in name order (the order captures were made)."""
        matches = glob.glob(self.pattern, recursive=True)  # noqa: PTH207 - absolute patterns
        return sorted(path for path in map(Path, matches) if path.is_file())

    def fetch(self, context: FetchContext) -> SourceResult:
        result = SourceResult(self.name)
        paths = self.matching_files()
        if not paths:
            result.errors.append(f"no file matches {self.pattern}")
            return result
        keep = set(self.settings.announce_types)
        for path in paths:
            try:
                listing = parse_listing(path.read_bytes(), str(path), today=context.today)
            except ParseError as exc:
                result.errors.append(exc.message)
                continue
            except OSError as exc:
                result.errors.append(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            result.warnings.extend(listing.warnings)
            kept = [p for p in listing.papers if p.announce_type is None or p.announce_type in keep]
            log.debug(
                "%s: %d papers (%d kept) from %s", self.name, len(listing.papers), len(kept), path
            )
            result.papers.extend(paper.with_source(self.name) for paper in kept)
        return result
