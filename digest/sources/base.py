"""What a source is to the pipeline: something that fetches and returns papers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from digest.models import Paper

if TYPE_CHECKING:
    from digest.http import Http


@dataclass(slots=True)
class SourceResult:
    """What one source produced in one run.

    ``errors`` are set when the source failed, as a whole or in part (one bad file of
    several, one day of several): the run reports them and exits non-zero, yet keeps every
    paper that was read. ``cursor`` is the state to keep for the next run; the pipeline
    saves it together with the papers, so it only moves forward with what was stored.
    """

    name: str
    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cursor: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)  # url, status, retries
    stale: bool = False

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) if self.errors else None


def _silent(_message: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class FetchContext:
    """What a source may use: the run's date and time, the HTTP layer, its saved cursor."""

    today: date
    now: datetime
    http: Http | None = None
    cursor: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = _silent


class Source(Protocol):
    name: str

    def fetch(self, context: FetchContext) -> SourceResult:
        """Read the source. Must not raise for a failure of the source itself: report it."""
        ...
