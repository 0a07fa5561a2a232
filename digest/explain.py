"""`digest explain`: why a paper was (or was not) chosen for a subscriber.

It shows what the ledger recorded when the paper was ranked (the same breakdown the
digest printed), and how the paper scores now, among the papers first seen on its day
and against today's background of papers.
Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from digest.config import Config
from digest.models import Match, Scored, StoredPaper
from digest.paper_lookup import find_named_paper
from digest.pipeline import open_store
from digest.rank.highlight import highlight_spans
from digest.rank.profile import Profile
from digest.rank.score import BELOW_FLOOR, EXCLUDED, LEFT_OUT, REQUIRED_MISSING
from digest.ranker import Ranker
from digest.reader_lookup import find_reader
from digest.store import LedgerEntry


@dataclass(frozen=True, slots=True)
class Explanation:
    subscriber: str
    paper: StoredPaper
    recorded: LedgerEntry | None  # what was decided and shown, if the paper was offered
    now: Scored  # how it scores today
    eligible_now: bool
    # Among the papers of its day that match the profile, by score today: its place
    # (1 is the best; None when it does not match), how many match, and how many the
    # digest keeps (max_papers) and from what score (min_score).
    place_now: int | None
    matching_now: int
    max_papers: int
    min_score: float
    left_out: str  # why it does not match today (rank.score.LEFT_OUT), "" when it does
    floor: float  # the points its own keyword matches had to reach on its day
    # The reader's terms behind left_out: the excluded ones it holds, or the required ones
    # (it holds none of them).
    left_out_by: tuple[str, ...] = ()


def explain(config: Config, subscriber_name: str, ref: str, today: date) -> Explanation:
    with open_store(config, dry_run=True) as store:
        subscriber = find_reader(config, store, subscriber_name)  # config or store reader
        paper = find_named_paper(
            store, ref, hint="give an arXiv id (2401.12345), a title or words of it, or an id "
            "from a run report",
        )  # fmt: skip
        recorded = store.ledger_entry(subscriber.name, paper.uid)
        # Among the papers of its day, as a run ranks it: the score cut and the model of
        # the reader's ratings measure a paper against the others of its day.
        candidates = store.papers_after(0, until=paper.first_seen, since=paper.first_seen)
        ranker = Ranker.for_reader(config, store, today, subscriber, candidates)
        ranking, _warnings = ranker.rank(subscriber, candidates)
        profile = ranker.profile(subscriber)  # the one it ranked with
    at = next(i for i, p in enumerate(candidates) if p.uid == paper.uid)
    now = next((s for s in ranking.selected if s.paper.uid == paper.uid), None) or next(
        s for s in ranking.considered if s.paper.uid == paper.uid
    )
    eligible = bool(ranking.eligible[at])
    left_out = int(ranking.left_out[at]) if len(ranking.left_out) else 0
    ahead = int(np.sum(ranking.eligible & (ranking.scores > ranking.scores[at])))
    return Explanation(
        subscriber.name, paper, recorded, now, eligible,
        place_now=ahead + 1 if eligible else None,
        matching_now=int(np.sum(ranking.eligible)),
        max_papers=subscriber.max_papers,
        min_score=subscriber.min_score,
        left_out=LEFT_OUT[left_out],
        floor=float(ranking.floors[at]) if len(ranking.floors) else 0.0,
        left_out_by=_left_out_by(profile, paper, left_out),
    )  # fmt: skip


def _left_out_by(profile: Profile, paper: StoredPaper, left_out: int) -> tuple[str, ...]:
    """The reader's terms that keep the paper out: the excluded ones its title or abstract
    holds (by the ranking's own rules), or the required ones (it holds none of them)."""
    if left_out == EXCLUDED:
        texts = (paper.paper.title, paper.paper.abstract)
        return tuple(
            term.text
            for term in profile.exclude
            if any(highlight_spans(text, [term.text]) for text in texts)
        )
    if left_out == REQUIRED_MISSING:
        return tuple(term.text for term in profile.require)
    return ()


def describe(found: Explanation) -> list[str]:
    """The explanation as lines of text, for the terminal."""
    paper = found.paper.paper
    lines = [
        f"Paper:  {paper.title}",
        f"        {paper.ref} · first seen {found.paper.first_seen.isoformat()}",
        f"For:    {found.subscriber}",
        "",
    ]
    recorded = found.recorded
    if recorded is None:
        lines.append("Not offered to this subscriber yet.")
    else:
        where = f", section {recorded.section}" if recorded.section else ""
        day = recorded.digest_date.isoformat()
        if recorded.status == "selected" and recorded.position is not None:
            lines.append(
                f"Chosen for the digest of {day}, #{recorded.position + 1} of "
                f"{recorded.digest_size}{where}; score {recorded.score:.4f}"
            )
            lines += _matches(recorded.matches)
        else:
            lines.append(f"Considered for the digest of {day} and not chosen.")
    now = found.now
    state = "it matches the profile" if found.eligible_now else "it does not match the profile"
    same = recorded is not None and recorded.score == now.score and recorded.matches == now.matches
    lines.append("")
    if same:
        lines.append(f"Scored today: {now.score:.4f}, the same breakdown ({state}).")
    else:
        lines.append(f"Scored today against the recent papers: {now.score:.4f} ({state})")
        lines += _matches(now.matches)
    lines += _place(found)
    return lines


def _place(found: Explanation) -> list[str]:
    """Where the paper stands today among its day's matches, and so why it is or is not
    in the digest: a paper that matches can still be left out by max_papers or min_score."""
    if found.place_now is None:
        if not found.left_out:
            return []
        if found.left_out == LEFT_OUT[BELOW_FLOOR]:
            own = sum(m.points for m in found.now.matches if m.field in ("title", "abstract"))
            return [
                f"Today it is left out: its own keyword points ({own:.4f}) are below the day's "
                f"floor ({found.floor:.4f}, a share of its interest's best papers' scores)."
            ]
        named = ", ".join(f"“{text}”" for text in found.left_out_by)
        return [f"Today it is left out: {found.left_out}" + (f" ({named})." if named else ".")]
    place = f"#{found.place_now} of the {found.matching_now} papers of its day that match"
    if found.now.score < found.min_score:
        return [f"Today: {place}, below min_score ({found.min_score:g}): left out."]
    if found.place_now > found.max_papers:
        return [f"Today: {place}; the digest keeps the best {found.max_papers} (max_papers)."]
    return [f"Today: {place}, within the {found.max_papers} the digest keeps (max_papers)."]


_SIGNAL_NAMES = {
    "liked": "similar to a paper you liked",
    "rated": "like papers you rated up",
    "disliked": "like a paper you rated down",
    "taste": "learnt from your ratings",
    "neighbours": "close to other matches (most: this one)",
}


def _matches(matches: tuple[Match, ...]) -> list[str]:
    if not matches:
        return ["  no keyword, author or other signal matched"]
    lines = [f"  {'points':>8}  {'what':<32} where"]
    for match in sorted(matches, key=lambda m: -m.points):
        only = ", ".join(f"“{word}”" for word in match.via.split())
        how = {"near": ", words apart", "word": f", only {only}"}.get(match.kind, "")
        count = f" ({match.count}x)" if match.field in ("title", "abstract") else ""
        where = _SIGNAL_NAMES.get(match.field, match.field)
        what = f"related: {', '.join(match.via.split())}" if match.kind == "related" else match.term
        lines.append(f"  {match.points:>8.3f}  {what[:32]:<32} {where}{count}{how}")
    return lines
