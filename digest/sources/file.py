"""The ``file`` source: local listings matched by a glob, in any format we can parse.

Each file is read whole and parsed in memory (some six times its size), so a file larger
than the source's ``max_bytes`` is refused before it is read, and reported by its path;
the other files and sources still run.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

from digest.config import FileSourceSettings
from digest.errors import ParseError, SourceError
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
                content = read_capped(path, self.settings.max_bytes, self.name)
            except SourceError as exc:
                result.errors.append(str(exc))  # with its hint: the setting to change
                continue
            except OSError as exc:
                result.errors.append(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            try:
                listing = parse_listing(content, str(path), today=context.today)
            except ParseError as exc:
                result.errors.append(exc.message)
                continue
            result.warnings.extend(listing.warnings)
            kept = [p for p in listing.papers if p.announce_type is None or p.announce_type in keep]
            log.debug(
                "%s: %d papers (%d kept) from %s", self.name, len(listing.papers), len(kept), path
            )
            result.papers.extend(paper.with_source(self.name) for paper in kept)
        return result


def read_capped(path: Path, limit: int, source: str) -> bytes:
    """The bytes of ``path``, or SourceError naming the file, its size and the limit.

    The size is checked before reading, and the read stops one byte past the limit, so a
    file that grows meanwhile is refused too rather than read whole.
    """
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        content = file.read(limit + 1) if size <= limit else b""
    if size > limit or len(content) > limit:
        shown = max(size, len(content))
        raise SourceError(
            f"{path}: {_megabytes(shown)} ({shown:,} bytes), larger than the "
            f"{_megabytes(limit)} ({limit:,} bytes) source {source!r} reads; the file was skipped",
            hint=f"split the file, or raise max_bytes of source {source!r} in the config",
        )
    return content


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
