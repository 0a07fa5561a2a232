"""`digest explain`: why a paper was (or was not) chosen for a subscriber.

It shows what the ledger recorded when the paper was ranked (the same breakdown the
digest printed), and how the paper scores now, against today's background of papers.
Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from digest.config import Config
from digest.errors import DigestError
from digest.models import Scored, StoredPaper
from digest.pipeline import open_store
from digest.ranker import Ranker
from digest.store.store import LedgerEntry


@dataclass(frozen=True, slots=True)
class Explanation:
    subscriber: str
    paper: StoredPaper
    recorded: LedgerEntry | None  # what was decided and shown, if the paper was offered
    now: Scored  # how it scores today
    eligible_now: bool


def explain(config: Config, subscriber_name: str, ref: str, today: date) -> Explanation:
    subscriber = config.subscriber(subscriber_name)
    with open_store(config, dry_run=True) as store:
        paper = store.find_paper(ref)
        if paper is None:
            raise DigestError(
                f"no paper {ref!r} in the store {store.location}",
                hint="give an arXiv id (2401.12345), a title, or an id from a run report",
            )
        recorded = store.ledger_entry(subscriber.name, paper.uid)
        ranking, _warnings = Ranker(store, today).rank(subscriber, [paper])
    now = (ranking.selected or ranking.considered)[0]
    return Explanation(subscriber.name, paper, recorded, now, bool(ranking.selected))
