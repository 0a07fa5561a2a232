"""Ranking rated readers with the models of their ratings fitted, and with them kept.

    python benchmarks/kept_models.py [--papers 2000] [--readers 1000] [--rounds 3]

A run fits a reader's model of its ratings when the ratings changed, and otherwise ranks
with the model kept from the run that fitted it (digest.rank.learn.Taste). This ranks
the same readers (``--readers``, each with 5 papers rated up and 5 down, drawn from the
day's synthetic papers, benchmarks/workload.py) over the same ``--papers`` both ways,
in alternating rounds in one process, and reports the best time of each and their ratio.
The analysis of the terms and the related words is done once before, as a run's
``prepare`` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from datetime import date

from workload import Workload

from digest.models import StoredPaper
from digest.rank import Corpus, Profile
from digest.rank.score import Request, rank_many

DAY = date(2026, 3, 13)


def requests_of(papers: list[StoredPaper], readers: int) -> list[Request]:
    """Workload profiles, each with 5 papers rated up and 5 down."""
    workload, rng = Workload(), random.Random(1)
    found = []
    for number in range(readers):
        spec = workload.profile(number)
        interests = [(i["name"], i["keywords"]) for i in spec.get("interests", [])]  # type: ignore[attr-defined]
        profile = Profile.build(
            spec.get("keywords", []),  # type: ignore[arg-type]
            interests=interests,
            exclude=spec.get("exclude", []),  # type: ignore[arg-type]
            max_papers=20,
        )
        rated = rng.sample(papers, 10)
        up, down = rated[:5], rated[5:]
        found.append(Request(profile, papers, up, frozenset(p.uid for p in up), down))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workload = Workload()
    papers = [StoredPaper(k, workload.paper(k, DAY), DAY) for k in range(1, args.papers + 1)]
    corpus = Corpus(papers)
    fresh = requests_of(papers, args.readers)
    first = rank_many(fresh, corpus)  # analysis, expansion and vectoriser, once
    kept = [dataclasses.replace(r, taste=f.fitted) for r, f in zip(fresh, first, strict=True)]
    best = {"fitted": float("inf"), "kept": float("inf")}
    for _round in range(args.rounds):
        for name, requests in (("fitted", fresh), ("kept", kept)):
            started = time.perf_counter()
            rankings = rank_many(requests, corpus)
            best[name] = min(best[name], time.perf_counter() - started)
            fits = sum(r.fitted is not None for r in rankings)
            assert fits == (len(requests) if name == "fitted" else 0), (name, fits)
    print(
        json.dumps(
            {
                "papers": args.papers,
                "readers": args.readers,
                "fitted_s": round(best["fitted"], 2),
                "kept_s": round(best["kept"], 2),
                "kept_speedup": round(best["fitted"] / best["kept"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
