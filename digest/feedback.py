"""Ratings from the command line (`digest feedback`): the same votes the rating links of
an email record, for a config or store reader, on a paper named by arXiv id or title."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.config import Config
from digest.errors import DigestError
from digest.models import StoredPaper
from digest.paper_lookup import find_named_paper
from digest.pipeline import open_store
from digest.reader_lookup import find_reader
from digest.store import Store
from digest.store.web import Rating

VOTES: dict[str, int | None] = {"up": 1, "down": -1, "clear": None}


@dataclass(frozen=True, slots=True)
class Recorded:
    subscriber: str
    paper: StoredPaper
    vote: int | None  # +1, -1, or None: the vote was cleared


def rated_paper(store: Store, ref: str) -> StoredPaper:
    """The stored paper ``ref`` names: an arXiv id in any spelling (``2401.12345v2``,
    ``arXiv:2401.12345``, an arxiv.org link), its title, or words of its title that fit
    it alone. A DigestError says what was looked for when there is none."""
    return find_named_paper(
        store, ref, hint="only papers a run has read can be rated; give an arXiv id "
        "(2401.12345, arXiv:2401.12345v2 or its arxiv.org link) or the paper's title, as in "
        "a digest",
    )  # fmt: skip


def record_vote(config: Config, reader: str, paper: str, how: str, now: datetime) -> Recorded:
    """Record ``how`` (up, down or clear) of ``reader`` on ``paper``; the last vote wins."""
    if how not in VOTES:
        raise DigestError(f"unknown vote {how!r}; expected up, down or clear")
    with open_store(config) as store:
        subscriber = find_reader(config, store, reader)
        found = rated_paper(store, paper)
        vote = VOTES[how]
        store.rate(subscriber.name, found.uid, vote, "cli", now)  # type: ignore[arg-type]
    return Recorded(subscriber.name, found, vote)


def ratings_of(config: Config, reader: str) -> tuple[str, list[Rating]]:
    """The reader's name and its ratings, newest first."""
    with open_store(config) as store:
        subscriber = find_reader(config, store, reader)
        return subscriber.name, store.ratings_of(subscriber.name)
