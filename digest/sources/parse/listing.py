"""What every parser returns: the papers of one listing and what it noticed on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from digest.models import Paper

Item = TypeVar("Item")


@dataclass(slots=True)
class Listing:
    """The parsed content of one response or file.

    ``warnings`` are problems with single entries that were skipped (the rest of the
    listing is still good); a listing that cannot be read at all raises ParseError instead.
    ``listed_on`` is the date the listing itself carries, when it has one.
    """

    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    listed_on: date | None = None
    total_results: int | None = None

    def collect(
        self, items: Iterable[Item], parse: Callable[[Item], Paper], origin: str, what: str
    ) -> None:
        """Parse each entry; one that cannot be read is skipped with a warning naming it."""
        for index, item in enumerate(items):
            try:
                self.papers.append(parse(item))
            except ValueError as exc:
                self.warnings.append(f"{origin}: {what} {index}: skipped, {exc}")
