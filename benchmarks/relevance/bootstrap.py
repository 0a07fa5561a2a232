"""How sure the comparison with BM25 is, interest by interest: a bootstrap over the papers.

    python benchmarks/relevance/bootstrap.py [SEEDS] [--listings] [--resamples 2000]

An interest's gap to BM25 (delivered MAP or NDCG@30, as evaluate.py measures them) rests
on the handful of papers graded relevant to it: with 4 to 40 of them, which papers
happen to be in the set moves the gap by more than the 0.02 an interest may lag BM25.
This draws the labelled papers again with replacement, ``--resamples`` times (a paper
drawn twice counts as two papers, side by side in each system's order; one not drawn is
gone), scores both systems on each draw, and prints each interest's gap with its 90%
interval and how often it is below -0.02, and the same for the mean over the interests.

Both systems rank the whole set once and keep that order on every draw: the intervals
cover which papers were graded, not how IDF or query expansion would shift on another
corpus (they would widen it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from evaluate import (
    CUTOFF,
    LabelledSet,
    bm25,
    bm25_index,
    listing_set,
    load_labels,
    ours,
    seed_set,
    seeds_argument,
)

from digest.rank import Corpus

LAG = -0.02  # how far below BM25 an interest may be
RESAMPLES = 2000
SEED = 20261203  # the draws are the same on every run


@dataclass(frozen=True, slots=True)
class Delivered:
    """One system's delivered papers for one interest, as positions in the set's papers."""

    order: np.ndarray  # the delivered papers, best first
    grades: np.ndarray  # every paper's grade for the interest, by position


def average_precision(delivered: Delivered, counts: np.ndarray) -> float:
    """evaluate.average_precision on a draw: paper i appears ``counts[i]`` times."""
    drawn = np.repeat(delivered.order, counts[delivered.order])
    relevant_total = counts[delivered.grades >= 1].sum()
    if not relevant_total:
        return 0.0
    hits = delivered.grades[drawn] >= 1
    precision = np.cumsum(hits) / np.arange(1, len(drawn) + 1)
    return float(precision[hits].sum() / relevant_total)


def ndcg(delivered: Delivered, counts: np.ndarray, cutoff: int = CUTOFF) -> float:
    """evaluate.ndcg on a draw: paper i appears ``counts[i]`` times."""
    discounts = 1.0 / np.log2(np.arange(2, cutoff + 2))
    drawn = np.repeat(delivered.order, counts[delivered.order])[:cutoff]
    gains = 2.0 ** delivered.grades[drawn] - 1
    every = np.sort(np.repeat(delivered.grades, counts))[::-1][:cutoff]
    ideal = float(((2.0**every - 1) * discounts[: len(every)]).sum())
    return float((gains * discounts[: len(gains)]).sum() / ideal) if ideal else 0.0


METRICS = {"delivered MAP": average_precision, "delivered NDCG@30": ndcg}


def delivered_lists(labelled: LabelledSet) -> dict[str, dict[str, Delivered]]:
    """Ours and BM25's delivered papers for every interest of interests.toml."""
    papers = list(labelled.papers.values())
    position = {paper.uid: i for i, paper in enumerate(papers)}
    by_id = labelled.papers
    corpus = Corpus(papers)
    index = bm25_index(papers)
    found: dict[str, dict[str, Delivered]] = {}
    for interest in load_labels()[0]:
        grades = np.zeros(len(papers), dtype=np.int64)
        for paper_id, grade in labelled.grades[interest.name].items():
            grades[position[by_id[paper_id].uid]] = grade
        systems = {
            "ours": ours(interest, papers, corpus)[1],
            "bm25": bm25(interest, papers, index)[1],
        }
        found[interest.name] = {
            name: Delivered(np.array([position[uid] for uid in uids], dtype=np.int64), grades)
            for name, uids in systems.items()
        }
    return found


def gaps(
    lists: dict[str, dict[str, Delivered]], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, np.ndarray]:
    """Per metric, an interest x (1 + resamples) array of ours minus BM25: column 0 on
    the set as it is, then one column per draw (the same draws for every interest)."""
    size = len(next(iter(lists.values()))["ours"].grades)
    generator = np.random.default_rng(seed)
    draws = [np.ones(size, dtype=np.int64)]
    draws += [
        np.bincount(generator.integers(0, size, size), minlength=size) for _ in range(resamples)
    ]
    return {
        metric: np.array(
            [
                [score(pair["ours"], counts) - score(pair["bm25"], counts) for counts in draws]
                for pair in lists.values()
            ]
        )
        for metric, score in METRICS.items()
    }


def summary_rows(names: list[str], found: dict[str, np.ndarray]) -> list[list[str]]:
    """Per interest, then for the mean: each metric's gap, 90% interval, share below LAG."""
    rows = []
    for r, name in enumerate([*names, "mean"]):
        row = [name]
        for table in found.values():
            samples = table.mean(axis=0) if name == "mean" else table[r]
            low, high = np.percentile(samples[1:], [5, 95])
            below = float((samples[1:] < LAG).mean())
            row += [f"{samples[0]:+.3f}", f"[{low:+.3f}, {high:+.3f}]", f"{below:.2f}"]
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    resamples = RESAMPLES
    if "--resamples" in argv:
        at = argv.index("--resamples")
        resamples = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    seeds = seeds_argument(argv)
    if seeds is None:
        return 2
    labelled = listing_set(seeds.parent / "fixtures") if "--listings" in argv else seed_set(seeds)
    lists = delivered_lists(labelled)
    found = gaps(lists, resamples)
    header = ["interest"]
    for metric in found:
        header += [f"{metric} gap", "90% interval", f"share < {LAG}"]
    print(f"ours - bm25, {resamples} draws of the {len(labelled.papers)} papers:")
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for row in summary_rows(list(lists), found):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
