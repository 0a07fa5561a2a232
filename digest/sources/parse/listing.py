"""What every parser returns: the papers of one listing and what it noticed on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from digest.models import Paper, cut_fields

Item = TypeVar("Item")


@dataclass(slots=True)
class Listing:
    """The parsed content of one response or file.

    ``warnings`` are problems with single entries: those that were skipped (the rest of
    the listing is still good; ``skipped`` counts them) and those whose fields were too
    long and were cut. A listing that cannot be read at all raises ParseError instead.
    ``listed_on`` is the date the listing itself carries, when it has one.
    """

    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    listed_on: date | None = None
    total_results: int | None = None
    skipped: int = 0

    @property
    def entries(self) -> int:
        """How many entries the listing had, read or skipped: what a page is counted by."""
        return len(self.papers) + self.skipped

    def add(self, paper: Paper, origin: str, where: str) -> None:
        """Keep a paper; say so when a field of it was cut to its limit."""
        self.papers.append(paper)
        cut = cut_fields(paper)
        if cut:
            self.warnings.append(
                f"{origin}: {where} ({paper.ref}): too long, cut: {'; '.join(cut)}"
            )

    def skip(self, origin: str, where: str, reason: str) -> None:
        """Leave an entry out, saying which and why."""
        self.skipped += 1
        self.warnings.append(f"{origin}: {where}: skipped, {reason}")

    def collect(
        self, items: Iterable[Item], parse: Callable[[Item], Paper], origin: str, what: str
    ) -> None:
        """Parse each entry; one that cannot be read is skipped with a warning naming it."""
        for index, item in enumerate(items):
            try:
                paper = parse(item)
            except ValueError as exc:
                self.skip(origin, f"{what} {index}", str(exc))
                continue
            self.add(paper, origin, f"{what} {index}")
