"""A simulated reader: do ratings make the next days' digests better?

The three seed captures are three consecutive days; a paper is new on the day of its
first capture, and the corpus of a day is every paper seen up to it. For each interest of
interests.toml, a reader with its keyword profile is shown, each day, the top ``SHOWN``
papers of that day's digest, as ranked with the ratings it has so far (``digest.rank``:
papers rated up count as liked, papers rated down lower similar ones), and rates each of
them: up if its label is 1 or 2, down if 0. The same profile without any rating is ranked
on the same papers in the same run. For each later day that has relevant papers: NDCG@10 of both digests (that day's papers graded, an ideal
order of that day's relevant papers), and their difference.

Usage: python benchmarks/relevance/simulate.py [SEEDS_DIR] [--json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from evaluate import load_labels, load_papers, ndcg, seeds_argument

from digest.models import StoredPaper
from digest.rank import Corpus, Profile
from digest.rank.score import Request, rank_many

SHOWN = 10  # the papers of a day's digest the reader looks at and rates


def days_of(by_id: dict[str, StoredPaper]) -> list[list[tuple[str, StoredPaper]]]:
    """The papers new on each capture's day (ids are CAPTURE:INDEX of a first capture)."""
    days: dict[str, list[tuple[str, StoredPaper]]] = {}
    for paper_id, paper in by_id.items():
        days.setdefault(paper_id.split(":")[0], []).append((paper_id, paper))
    return [days[key] for key in sorted(days)]


def simulate(seeds: Path) -> dict[str, dict[str, object]]:
    by_id = load_papers(seeds)
    interests, labels = load_labels()
    days = days_of(by_id)
    rows: dict[str, dict[str, object]] = {}
    for interest in interests:
        grades = labels[interest.name]
        profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=SHOWN)
        up: list[StoredPaper] = []
        down: list[StoredPaper] = []
        seen: list[StoredPaper] = []
        per_day = []
        for number, day in enumerate(days):
            papers = [paper for _id, paper in day]
            seen.extend(papers)
            corpus = Corpus(list(seen))
            day_grades = {paper.uid: grades.get(paper_id, 0) for paper_id, paper in day}
            rated, plain = rank_many(
                [
                    Request(profile, papers, up, frozenset(p.uid for p in up), down),
                    Request(profile, papers),
                ],
                corpus,
            )
            shown = [s.paper for s in rated.selected[:SHOWN]]
            if number > 0 and any(g >= 1 for g in day_grades.values()):
                with_ratings = ndcg([p.uid for p in shown], day_grades, SHOWN)
                without = ndcg([s.paper.uid for s in plain.selected[:SHOWN]], day_grades, SHOWN)
                per_day.append(
                    {"day": number + 1, "with_ratings": with_ratings, "without": without}
                )
            for paper in shown:
                (up if day_grades[paper.uid] >= 1 else down).append(paper)
        rows[interest.name] = {
            "days": per_day,
            "ratings_up": len(up),
            "ratings_down": len(down),
            "gain": sum(d["with_ratings"] - d["without"] for d in per_day) / max(len(per_day), 1),
        }
    return rows


def main(argv: list[str]) -> int:
    seeds = seeds_argument(argv)
    if seeds is None:
        return 2
    rows = simulate(seeds)
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'interest':<28}{'day':>4}{'without':>9}{'with':>7}{'up':>4}{'down':>5}")
    for name, row in rows.items():
        for d in row["days"]:  # type: ignore[attr-defined]
            print(
                f"{name:<28}{d['day']:>4}{d['without']:>9.3f}{d['with_ratings']:>7.3f}"
                f"{row['ratings_up']:>4}{row['ratings_down']:>5}"
            )
    days = [d for row in rows.values() for d in row["days"]]  # type: ignore[attr-defined]
    without = sum(d["without"] for d in days) / len(days)
    with_ratings = sum(d["with_ratings"] for d in days) / len(days)
    print(
        f"\nmean NDCG@10 of the later days: without ratings {without:.3f}, with "
        f"{with_ratings:.3f}, gain {with_ratings - without:+.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
