"""How well does the ranking order papers for a keyword profile? MAP and NDCG@30.

Runs three systems in one process on the same papers and the same keywords:

- ``ours``: paper-digest's ranking (digest.rank), keyword profile only;
- ``substring``: counts of each keyword as a substring of title + abstract;
- ``bm25``: rank_bm25's BM25Okapi on title + abstract, the keywords' words as the query.

The papers are the 226 of the captures in ../shared/seeds (or SEEDS_DIR), the interests
and graded labels those of interests.toml and qrels.tsv in this folder (see LABELLING.md).
Each system ranks all papers; ties keep the papers' order in the captures.

Each system is scored on its whole ranking and on what it delivers: ours, the papers past
the digest's score cut (no ``max_papers`` cap); the baselines, the papers they score above
zero.

With ``--sensitivity`` it also ranks with one scoring constant changed at a time (and a
few ablations), to show which parts of the scoring the result depends on. With
``--leave-one-out`` it chooses query expansion's constants (GRID) and the score cut's
floor (FLOORS) on all interests but one and scores them on that one, for each interest
(its profile of interests.toml, and with ``--profiles`` its other readers' too).

Usage: python benchmarks/relevance/evaluate.py [SEEDS_DIR] [--json] [--sensitivity]
       [--leave-one-out] [--floors] [--profiles] [--listings]

With ``--profiles`` it scores the same interests with other readers' keyword profiles
(profiles.toml), written before any ranking was run with them. With ``--listings`` it
scores all three systems again on a second labelled set, the daily listings among the
recorded service responses (the ``fixtures`` folder beside SEEDS_DIR; listings.py),
graded in qrels-listings.tsv before any ranking was run on them: a set none of the
constants was chosen on.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from listings import load_listing_papers
from rank_bm25 import BM25Okapi

from digest.models import StoredPaper
from digest.rank import DEFAULT_WEIGHTS, Corpus, Profile, Weights, rank
from digest.sources.parse.page_text import parse_page_text

HERE = Path(__file__).resolve().parent
LISTING_QRELS = HERE / "qrels-listings.tsv"
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


def load_labels(
    qrels: Path = HERE / "qrels.tsv",
) -> tuple[list[Interest], dict[str, dict[str, int]]]:
    """interests.toml's interests, and the grades of ``qrels``: interest -> paper id -> grade."""
    data = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    interests = [
        Interest(i["name"], list(i["keywords"]), list(i.get("exclude", [])))
        for i in data["interests"]
    ]
    grades: dict[str, dict[str, int]] = {i.name: {} for i in interests}
    with qrels.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            grades[row["interest"]][row["paper"]] = int(row["grade"])
    return interests, grades


@dataclass(frozen=True)
class LabelledSet:
    """Papers by id and their grades (interest -> paper id -> grade)."""

    papers: dict[str, StoredPaper]
    grades: dict[str, dict[str, int]]


def seed_set(seeds: Path) -> LabelledSet:
    """The seed captures' papers, graded in qrels.tsv: the set the constants are chosen on."""
    return LabelledSet(load_papers(seeds), load_labels()[1])


def listing_set(fixtures: Path) -> LabelledSet:
    """The recorded daily listings' papers, graded in qrels-listings.tsv: a set no constant
    was chosen on (see listings.py)."""
    return LabelledSet(load_listing_papers(fixtures), load_labels(LISTING_QRELS)[1])


# --- the three systems ---------------------------------------------------------------------


def ours(
    interest: Interest,
    papers: list[StoredPaper],
    corpus: Corpus,
    weights: Weights = DEFAULT_WEIGHTS,
) -> tuple[list[int], list[int]]:
    """Every paper by score, and what the digest delivers: the papers past the score cut,
    in digest order (no ``max_papers`` cap, so only the cut is measured)."""
    profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=len(papers))
    ranking = rank(profile, corpus, papers, weights=weights)
    order = sorted(range(len(papers)), key=lambda i: (-ranking.scores[i], papers[i].uid))
    return [papers[i].uid for i in order], [s.paper.uid for s in ranking.selected]


def substring(interest: Interest, papers: list[StoredPaper]) -> tuple[list[int], list[int]]:
    """Every paper by its count of keyword substrings, and those with any (what it delivers)."""
    terms = [k.lower() for k in interest.keywords]
    scores = {}
    for paper in papers:
        text = f"{paper.paper.title} {paper.paper.abstract}".lower()
        scores[paper.uid] = sum(text.count(term) for term in terms)
    ranked = sorted(scores, key=lambda uid: (-scores[uid], uid))
    return ranked, [uid for uid in ranked if scores[uid] > 0]


def _bm25_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25_index(papers: list[StoredPaper]) -> BM25Okapi:
    """The BM25 baseline's index of the papers' lower-cased title + abstract words."""
    return BM25Okapi([_bm25_tokens(f"{p.paper.title} {p.paper.abstract}") for p in papers])


def bm25(
    interest: Interest, papers: list[StoredPaper], index: BM25Okapi
) -> tuple[list[int], list[int]]:
    """Every paper by BM25Okapi score, and those scoring above zero (what it delivers)."""
    query = [token for keyword in interest.keywords for token in _bm25_tokens(keyword)]
    scores = index.get_scores(query)
    order = sorted(range(len(papers)), key=lambda i: (-scores[i], papers[i].uid))
    return [papers[i].uid for i in order], [papers[i].uid for i in order if scores[i] > 0]


# --- metrics ----------------------------------------------------------------------------------


def average_precision(ranked: list[int], grades: dict[int, int]) -> float:
    relevant = sum(1 for g in grades.values() if g >= 1)
    hits, total = 0, 0.0
    for position, uid in enumerate(ranked, start=1):
        if grades.get(uid, 0) >= 1:
            hits += 1
            total += hits / position
    return total / relevant if relevant else 0.0


def recall(delivered: list[int], grades: dict[int, int]) -> float:
    """The share of the relevant papers (grade 1 or 2) that are delivered."""
    relevant = {uid for uid, g in grades.items() if g >= 1}
    return len(relevant.intersection(delivered)) / len(relevant) if relevant else 0.0


def ndcg(ranked: list[int], grades: dict[int, int], cutoff: int = CUTOFF) -> float:
    def dcg(gains: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:cutoff]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(uid, 0) for uid in ranked]) / ideal if ideal else 0.0


METRICS = (
    "map",
    "ndcg30",
    "recall",
    "irrelevant",
    "delivered",
    "delivered_map",
    "delivered_ndcg30",
)


def irrelevant(delivered: list[int], grades: dict[int, int]) -> float:
    """The share of the delivered papers that are not relevant (grade 0)."""
    return (
        sum(1 for uid in delivered if grades.get(uid, 0) == 0) / len(delivered)
        if delivered
        else 0.0
    )


def scores_of(ranked: list[int], delivered: list[int], grades: dict[int, int]) -> dict[str, float]:
    """The metrics of one system for one interest: MAP and NDCG@30 of its whole ranking,
    and recall, MAP and NDCG@30 of what it delivers (a relevant paper left out counts as
    never found)."""
    return {
        "map": average_precision(ranked, grades),
        "ndcg30": ndcg(ranked, grades),
        "recall": recall(delivered, grades),
        "irrelevant": irrelevant(delivered, grades),
        "delivered": float(len(delivered)),
        "delivered_map": average_precision(delivered, grades),
        "delivered_ndcg30": ndcg(delivered, grades),
    }


def other_profiles() -> dict[str, list[Interest]]:
    """The interests with the keywords of profiles.toml's other readers, by profile name
    ("short", "long"), in interests.toml's order."""
    data = tomllib.loads((HERE / "profiles.toml").read_text(encoding="utf-8"))
    by_interest = {p["interest"]: p for p in data["profiles"]}
    interests, _labels = load_labels()
    return {
        variant: [Interest(i.name, list(by_interest[i.name][variant]), []) for i in interests]
        for variant in PROFILES
    }


PROFILES = ("short", "long")


def evaluate(
    seeds: Path, weights: Weights = DEFAULT_WEIGHTS, interests: list[Interest] | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """Every system's metrics for each interest on the seed captures."""
    return evaluate_set(seed_set(seeds), weights, interests)


def evaluate_set(
    labelled: LabelledSet,
    weights: Weights = DEFAULT_WEIGHTS,
    interests: list[Interest] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Every system's metrics for each interest (interests.toml's, or ``interests``: the
    same names with other keywords) on one labelled set."""
    by_id, labels = labelled.papers, labelled.grades
    papers = list(by_id.values())
    interests = load_labels()[0] if interests is None else interests
    corpus = Corpus(papers)
    index = bm25_index(papers)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for interest in interests:
        grades = {by_id[paper_id].uid: grade for paper_id, grade in labels[interest.name].items()}
        systems = {
            "ours": ours(interest, papers, corpus, weights),
            "substring": substring(interest, papers),
            "bm25": bm25(interest, papers, index),
        }
        results[interest.name] = {
            name: scores_of(ranked, delivered, grades)
            for name, (ranked, delivered) in systems.items()
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
    "ablation: no query expansion": {"related": 0.0},
    "ablation: no score regularisation": {"neighbours": 0.0},
}


def sensitivity(seeds: Path) -> dict[str, dict[str, float]]:
    """Mean MAP and NDCG@30 of our ranking with one constant changed at a time."""
    labelled = seed_set(seeds)
    by_id, labels = labelled.papers, labelled.grades
    papers = list(by_id.values())
    interests = load_labels()[0]
    corpus = Corpus(papers)
    rows = {}
    for name, change in VARIANTS.items():
        weights = Weights(**change)
        maps, ndcgs = [], []
        for interest in interests:
            grades = {by_id[p].uid: g for p, g in labels[interest.name].items()}
            ranked, _delivered = ours(interest, papers, corpus, weights)
            maps.append(average_precision(ranked, grades))
            ndcgs.append(ndcg(ranked, grades))
        rows[name] = {"map": sum(maps) / len(maps), "ndcg30": sum(ndcgs) / len(ndcgs)}
    return rows


# Query expansion's constants (Weights.related, .feedback_docs, .related_terms), searched
# by leave-one-interest-out: chosen on all interests but one, reported on that one.
GRID = [
    {"related": related, "feedback_docs": docs, "related_terms": terms}
    for related in (2.0, 3.0, 4.5, 6.0, 9.0)
    for docs in (10, 20)
    for terms in (10, 20, 40, 80)
]
# Score regularisation's constants (Weights.neighbours, neighbour_count), chosen after
# the expansion's: the share of its closest candidates' points a paper gains, and how many.
NEIGHBOUR_GRID = [
    {"neighbours": share, "neighbour_count": count}
    for share in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    for count in (5, 10, 20)
]
# The score cut's floor (Weights.floor), chosen after them: the highest that keeps
# RECALL_TARGET of the relevant papers on the interests it is chosen on.
FLOORS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)
RECALL_TARGET = 0.95


def profile_sets() -> dict[str, list[Interest]]:
    """Every keyword profile of every interest, by set: interests.toml's first (the set
    the constants are chosen on), then the other readers' of profiles.toml."""
    return {"interests.toml": load_labels()[0], **other_profiles()}


def ours_by_constants(
    seeds: Path, settings: list[dict[str, float]], interests: list[Interest] | None = None
) -> list[dict[str, dict[str, float]]]:
    """For each setting (changes to DEFAULT_WEIGHTS), our metrics per interest (of
    interests.toml, or ``interests``)."""
    labelled = seed_set(seeds)
    by_id, labels = labelled.papers, labelled.grades
    papers = list(by_id.values())
    interests = load_labels()[0] if interests is None else interests
    corpus = Corpus(papers)
    found = []
    for change in settings:
        weights = Weights(**change)
        row = {}
        for interest in interests:
            grades = {by_id[p].uid: g for p, g in labels[interest.name].items()}
            ranked, delivered = ours(interest, papers, corpus, weights)
            row[interest.name] = scores_of(ranked, delivered, grades)
        found.append(row)
    return found


def _by_profile(
    seeds: Path, settings: list[dict[str, float]], sets: dict[str, list[Interest]]
) -> list[dict[tuple[str, str], dict[str, float]]]:
    """``ours_by_constants`` for every profile set, keyed by (set, interest)."""
    found: list[dict[tuple[str, str], dict[str, float]]] = [{} for _ in settings]
    for variant, interests in sets.items():
        for row, metrics in zip(found, ours_by_constants(seeds, settings, interests), strict=True):
            row.update(((variant, name), m) for name, m in metrics.items())
    return found


def leave_one_out(seeds: Path) -> dict[str, dict[str, object]]:
    """For each interest, the constants chosen on the others' interests.toml profiles, and
    what they give on it: query expansion's (GRID) by the mean MAP and NDCG@30 of what is
    delivered, then score regularisation's (NEIGHBOUR_GRID) the same way, then the floor
    (FLOORS) as the highest that delivers RECALL_TARGET of
    their relevant papers. Each interest's row holds the metrics of its interests.toml
    profile, and under "profiles" those of its profile in every set (profile_sets), with
    the same constants: none of them was fitted on any profile of that interest."""
    sets = profile_sets()
    first = next(iter(sets))
    grid = _by_profile(seeds, GRID, {first: sets[first]})  # the constants are fitted there
    names = [i.name for i in sets[first]]

    def others_of(name: str) -> list[tuple[str, str]]:
        return [(first, other) for other in names if other != name]

    def fitness(row: dict[tuple[str, str], dict[str, float]], among: list) -> float:
        return sum(row[key]["delivered_map"] + row[key]["delivered_ndcg30"] for key in among)

    chosen = {}
    for name in names:
        others = others_of(name)
        best = max(range(len(grid)), key=lambda k: (fitness(grid[k], others), -k))
        chosen[name] = GRID[best]
    # Then score regularisation's (NEIGHBOUR_GRID), with the expansion's chosen.
    candidates = [
        {**c, **n}
        for c in {tuple(c.items()): c for c in chosen.values()}.values()
        for n in NEIGHBOUR_GRID
    ]
    by_neighbours = dict(
        zip(
            [tuple(c.items()) for c in candidates],
            _by_profile(seeds, candidates, {first: sets[first]}),
            strict=True,
        )
    )
    for name in names:
        others = others_of(name)
        options = [{**chosen[name], **n} for n in NEIGHBOUR_GRID]
        chosen[name] = max(
            options,
            key=lambda c: (fitness(by_neighbours[tuple(c.items())], others), -c["neighbours"]),
        )
    settings = [
        {**c, "floor": floor}
        for c in {tuple(c.items()): c for c in chosen.values()}.values()
        for floor in FLOORS
    ]
    by_floor = dict(
        zip([tuple(s.items()) for s in settings], _by_profile(seeds, settings, sets), strict=True)
    )
    held: dict[str, dict[str, object]] = {}
    for name in names:
        others = others_of(name)
        rows = [by_floor[tuple({**chosen[name], "floor": f}.items())] for f in FLOORS]
        kept = [
            k
            for k, row in enumerate(rows)
            if sum(row[key]["recall"] for key in others) / len(others) >= RECALL_TARGET
        ]
        k = max(kept, default=0)
        held[name] = {
            "constants": {**chosen[name], "floor": FLOORS[k]},
            **rows[k][(first, name)],
            "profiles": {variant: rows[k][(variant, name)] for variant in sets},
        }
    return held


def floor_table(seeds: Path) -> dict[float, dict[str, float]]:
    """For each floor of FLOORS (the other constants the defaults): the mean recall,
    share of irrelevant papers, papers delivered, MAP and NDCG@30 of what is delivered,
    and the mean size and number of full digests of one capture's day."""
    settings = [{"floor": floor} for floor in FLOORS]
    table = {}
    for change, row in zip(settings, ours_by_constants(seeds, settings), strict=True):
        sizes = daily_sizes(seeds, Weights(**change))
        means = {m: sum(r[m] for r in row.values()) / len(row) for m in next(iter(row.values()))}
        means["day_size"] = sum(sizes) / len(sizes)
        means["day_full"] = float(sum(1 for n in sizes if n == DAY_MAX))
        table[change["floor"]] = means
    return table


DAY_MAX = 20  # max_papers of a day's digest in daily_sizes


def daily_sizes(
    seeds: Path, weights: Weights = DEFAULT_WEIGHTS, max_papers: int = DAY_MAX
) -> list[int]:
    """The size of each interest's digest on each capture's day (that capture's papers
    new, all 226 the background), capped at ``max_papers``: how often the cut leaves a
    digest short of full."""
    by_id = load_papers(seeds)
    papers = list(by_id.values())
    interests, _labels = load_labels()
    corpus = Corpus(papers)
    days: dict[str, list[StoredPaper]] = {}
    for paper_id, paper in by_id.items():
        days.setdefault(paper_id.split(":")[0], []).append(paper)
    sizes = []
    for interest in interests:
        profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=max_papers)
        for day in days.values():
            sizes.append(len(rank(profile, corpus, day, weights=weights).selected))
    return sizes


def means_of(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each system's metrics averaged over the interests."""
    systems = next(iter(results.values())).keys()
    return {
        s: {m: sum(r[s][m] for r in results.values()) / len(results) for m in METRICS}
        for s in systems
    }


def print_table(results: dict[str, dict[str, dict[str, float]]], metrics: list[str]) -> None:
    means = means_of(results)
    systems = list(means)
    labels = {
        "map": "MAP",
        "ndcg30": "NDCG@30",
        "recall": "recall",
        "irrelevant": "irrelevant",
        "delivered": "papers",
        "delivered_map": "MAP",
        "delivered_ndcg30": "NDCG@30",
    }
    print(
        f"{'interest':<24}"
        + "".join(f"{s + ' ' + labels[m]:>20}" for s in systems for m in metrics)
    )
    for name, row in [*results.items(), ("mean", means)]:
        print(f"{name:<24}" + "".join(f"{row[s][m]:>20.3f}" for s in systems for m in metrics))


def print_profiles(labelled: LabelledSet) -> None:
    """Ours against BM25 for each other reader's profile (profiles.toml), per interest."""
    for variant, interests in other_profiles().items():
        results = evaluate_set(labelled, interests=interests)
        print(f"\nThe {variant!r} profiles of profiles.toml:")
        print_table(results, ["map", "ndcg30", "recall", "delivered_map", "delivered_ndcg30"])
        print(gaps_to_bm25(results))


def print_listings(fixtures: Path, with_profiles: bool) -> None:
    """The tables of main on the recorded listings, a set no constant was chosen on."""
    if not fixtures.is_dir():
        print(f"\nno recorded listings at {fixtures}", file=sys.stderr)
        return
    labelled = listing_set(fixtures)
    results = evaluate_set(labelled)
    print(f"\nThe recorded listings ({len(labelled.papers)} papers of {fixtures}):")
    print_table(results, ["map", "ndcg30", "recall", "delivered_map", "delivered_ndcg30"])
    print(gaps_to_bm25(results))
    if with_profiles:
        print_profiles(labelled)


def gaps_to_bm25(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Ours minus BM25 on the whole ranking and on what is delivered, as one line; the
    delivered gaps with their standard error over the interests (each interest's gap is
    one sample) and the interest furthest below BM25."""
    ours, bm25 = (means_of(results)[s] for s in ("ours", "bm25"))

    def delivered(metric: str) -> str:
        gaps = [r["ours"][metric] - r["bm25"][metric] for r in results.values()]
        mean, error = sum(gaps) / len(gaps), standard_error(gaps)
        return f"{mean:+.3f} (standard error {error:.3f}, lowest {min(gaps):+.3f})"

    return (
        f"ours - bm25: MAP {ours['map'] - bm25['map']:+.3f}, "
        f"NDCG@30 {ours['ndcg30'] - bm25['ndcg30']:+.3f}; delivered: MAP "
        f"{delivered('delivered_map')}, NDCG@30 {delivered('delivered_ndcg30')}"
    )


def standard_error(samples: list[float]) -> float:
    """The standard error of the mean of ``samples`` (NaN for fewer than two)."""
    if len(samples) < 2:
        return float("nan")
    mean = sum(samples) / len(samples)
    variance = sum((x - mean) ** 2 for x in samples) / (len(samples) - 1)
    return (variance / len(samples)) ** 0.5


def seeds_argument(argv: list[str]) -> Path | None:
    """The captures' folder: the first argument that is not an option, else DEFAULT_SEEDS;
    None (after saying so) when it is not a folder."""
    args = [a for a in argv if not a.startswith("--")]
    seeds = Path(args[0]) if args else DEFAULT_SEEDS
    if not seeds.is_dir():
        print(
            f"no captures at {seeds}; pass the seeds folder as the first argument", file=sys.stderr
        )
        return None
    return seeds


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    with_sensitivity = "--sensitivity" in argv
    seeds = seeds_argument(argv)
    if seeds is None:
        return 2
    results = evaluate(seeds)
    means = means_of(results)
    if as_json:
        print(json.dumps({"interests": results, "mean": means}, indent=2))
        return 0
    print("The whole ranking:")
    print_table(results, ["map", "ndcg30"])
    print("\nWhat the digest delivers (past the score cut; bm25 and substring: scores above 0):")
    print_table(results, ["recall", "irrelevant", "delivered", "delivered_map", "delivered_ndcg30"])
    print("\n" + gaps_to_bm25(results))
    sizes = daily_sizes(seeds)
    print(
        f"\ndigests of one capture's day, max_papers {DAY_MAX} ({len(sizes)}): sizes "
        f"{sorted(sizes)}, mean {sum(sizes) / len(sizes):.1f}, "
        f"full {sum(1 for n in sizes if n == DAY_MAX)}"
    )
    if "--leave-one-out" in argv:
        held = leave_one_out(seeds)
        print("\nLeave one interest out: constants chosen on the others, scored on it")
        print(
            f"{'interest':<28}{'related':>8}{'docs':>6}{'terms':>6}{'share':>6}{'count':>6}"
            f"{'floor':>6}{'recall':>8}{'irrel.':>8}{'MAP':>8}{'NDCG@30':>9}"
        )
        for name, row in held.items():
            c = row["constants"]
            print(
                f"{name:<28}{c['related']:>8}{c['feedback_docs']:>6}{c['related_terms']:>6}"
                f"{c['neighbours']:>6}{c['neighbour_count']:>6}"
                f"{c['floor']:>6}{row['recall']:>8.3f}{row['irrelevant']:>8.3f}"
                f"{row['delivered_map']:>8.3f}{row['delivered_ndcg30']:>9.3f}"
            )
        for metric in ("recall", "irrelevant", "delivered_map", "delivered_ndcg30"):
            print(f"mean {metric}: {sum(r[metric] for r in held.values()) / len(held):.3f}")
        for metric in ("delivered_map", "delivered_ndcg30"):
            gap = sum(r[metric] for r in held.values()) / len(held) - means["bm25"][metric]
            print(f"held out - bm25 {metric}: {gap:+.3f}")
        for variant, interests in other_profiles().items():
            theirs = means_of(evaluate(seeds, interests=interests))["bm25"]
            gaps = [
                sum(r["profiles"][variant][m] for r in held.values()) / len(held) - theirs[m]
                for m in ("delivered_map", "delivered_ndcg30")
            ]
            print(
                f"held out - bm25, the {variant!r} profiles: MAP {gaps[0]:+.3f}, "
                f"NDCG@30 {gaps[1]:+.3f}"
            )
    if "--floors" in argv:
        print(
            f"\n{'floor':>6}{'recall':>8}{'irrel.':>8}{'papers':>8}{'MAP':>8}{'NDCG@30':>9}"
            f"{'day mean':>10}{'day full':>10}"
        )
        for floor, row in floor_table(seeds).items():
            print(
                f"{floor:>6}{row['recall']:>8.3f}{row['irrelevant']:>8.3f}{row['delivered']:>8.1f}"
                f"{row['delivered_map']:>8.3f}{row['delivered_ndcg30']:>9.3f}"
                f"{row['day_size']:>10.1f}{row['day_full']:>10.0f}"
            )
    if "--profiles" in argv:
        print_profiles(seed_set(seeds))
    if "--listings" in argv:
        print_listings(seeds.parent / "fixtures", "--profiles" in argv)
    if with_sensitivity:
        print(f"\n{'ours, with one change':<40}{'MAP':>8}{'NDCG@30':>10}")
        for name, row in sensitivity(seeds).items():
            print(f"{name:<40}{row['map']:>8.3f}{row['ndcg30']:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
