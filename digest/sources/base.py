"""What a source is to the pipeline: something that fetches and returns papers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from digest.models import Paper


@dataclass(slots=True)
class SourceResult:
    """What one source produced in one run.

    ``error`` is set when the source failed, as a whole or in part (one bad file of
    several): the run reports it and exits non-zero, yet keeps every paper that was read.
    """

    name: str
    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) if self.errors else None


@dataclass(frozen=True, slots=True)
class FetchContext:
    """What a source may know about the run: the digest date it is fetching for."""

    today: date


class Source(Protocol):
    name: str

    def fetch(self, context: FetchContext) -> SourceResult:
        """Read the source. Must not raise for a failure of the source itself: report it."""
        ...
