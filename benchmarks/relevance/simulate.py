"""A simulated reader: do ratings make the next days' digests better?

The three seed captures are three consecutive days; a paper is new on the day of its
first capture, and the corpus of a day is every paper seen up to it. For each interest of
interests.toml, a reader with its keyword profile is shown, each day, the top ``SHOWN``
papers of that day's digest, as ranked with the ratings it has so far, and rates the
first ``--rate`` of them (all ten by default): up if its label is 1 or 2, down if 0. The
same profile without any rating is ranked on the same papers in the same run. For each
later day that has relevant papers: NDCG@10 of both digests (that day's papers graded, an
ideal order of that day's relevant papers), their difference, and the ceiling: the
NDCG@10 of the best order of the papers the keyword digest finds eligible that day.

What ranks with ratings:

- ``digest``: ``digest.rank`` as a run does (papers rated up count as liked, papers rated
  down lower similar ones, and the model of the ratings of ``digest.rank.learn`` moves
  papers up or down);
- with ``--learners``, two per-reader models of the literature, each blended with the
  keyword score on the profile's scale (the score as a share of the mean of the day's 10
  best, plus ``beta`` times the model's standardised score): ``logistic``, a logistic
  regression on TF-IDF vectors (as arxiv-sanity-lite trains an SVM on tf-idf) with the
  earlier papers not shown as weak negatives, and ``rocchio``, the centroid of the papers
  rated up minus half that of those rated down. ``beta`` is chosen leaving one interest
  out: for each interest, the beta of BETAS with the best mean gain on the others.

With ``--oracle``, a bound rather than a learner: the same blend with a logistic model
fitted on the labels of every paper of every earlier day, shown or not (what a reader
who graded everything would teach), on TF-IDF vectors (``oracle``) and, when the
``[semantic]`` extra's packaged model is installed, on its MiniLM embeddings
(``oracle-minilm``). What it gains is about what a per-reader model of paper content
can gain on these days, however it learns from ratings.

With ``--semantic`` (and the ``[semantic]`` extra's packaged model installed), also
``digest+meaning``: the digest whose model of the ratings learns on each paper's MiniLM
embedding beside its TF-IDF vector, as a run with ``[semantic]`` does.

With ``--listings`` the reader goes on after the seed captures through the days of the
recorded daily listings (listings.py), graded in qrels-listings.tsv: 13 days in all.

Usage: python benchmarks/relevance/simulate.py [SEEDS_DIR] [--rate N] [--learners]
       [--oracle] [--semantic] [--listings] [--json]
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from evaluate import (
    LISTING_QRELS,
    Interest,
    load_labels,
    load_papers,
    ndcg,
    seeds_argument,
    standard_error,
)
from listings import load_listing_papers

from digest.models import StoredPaper
from digest.rank import Corpus, Profile
from digest.rank.rated import Meanings
from digest.rank.score import Request, rank_many

SHOWN = 10  # the papers of a day's digest the reader looks at
BETAS = (0.1, 0.2, 0.3, 0.5, 0.8)
WEAK = 0.1  # the sample weight of an earlier paper not shown, as a negative
ORACLE_C = 10.0  # the oracle's regularisation: the better of 1 and 10 on these days


def days_of(by_id: dict[str, StoredPaper]) -> list[list[tuple[str, StoredPaper]]]:
    """The papers new on each capture's day (ids are CAPTURE:INDEX of a first capture)."""
    days: dict[str, list[tuple[str, StoredPaper]]] = {}
    for paper_id, paper in by_id.items():
        days.setdefault(paper_id.split(":")[0], []).append((paper_id, paper))
    return [days[key] for key in sorted(days)]


def listing_days(fixtures: Path, first_uid: int) -> list[list[tuple[str, StoredPaper]]]:
    """The recorded listings' papers by the day they were first listed, numbered on from
    ``first_uid`` (listings.py)."""
    days: dict[date, list[tuple[str, StoredPaper]]] = {}
    for paper_id, stored in load_listing_papers(fixtures).items():
        days.setdefault(stored.first_seen, []).append((paper_id, stored))
    found, uid = [], first_uid
    for key in sorted(days):
        found.append([])
        for paper_id, stored in days[key]:
            found[-1].append((paper_id, StoredPaper(uid, stored.paper, stored.first_seen)))
            uid += 1
    return found


@dataclass
class Reader:
    """One simulated reader's ratings so far."""

    up: list[StoredPaper] = field(default_factory=list)
    down: list[StoredPaper] = field(default_factory=list)
    unshown: list[StoredPaper] = field(default_factory=list)
    graded: list[tuple[StoredPaper, int]] = field(default_factory=list)  # every earlier paper


@dataclass(eq=False)  # hashed by identity: its vectors are made once
class Day:
    number: int
    papers: list[StoredPaper]
    grades: dict[int, int]
    corpus: Corpus
    scores: np.ndarray  # the keyword digest's score of each paper, without ratings
    eligible: np.ndarray


# A ranker with ratings: (profile, day, reader) -> the uids shown, best first.
Shows = Callable[[Profile, Day, Reader], list[int]]
# A per-reader model: (day, reader) -> a score for each of the day's papers, or None.
Model = Callable[[Day, Reader], "np.ndarray | None"]


def digest_shows(meanings: Meanings | None = None) -> Shows:
    """What a run shows: ``digest.rank`` with the reader's ratings; with ``meanings`` (as
    with [semantic]), its model of the ratings learns on them too (the keyword ranking
    is left as it is, so that both sides differ by the ratings only)."""

    def shows(profile: Profile, day: Day, reader: Reader) -> list[int]:
        rated = frozenset(p.uid for p in reader.up)
        request = Request(profile, day.papers, reader.up, rated, reader.down)
        [ranking] = rank_many([request], day.corpus, meanings=meanings)
        return [s.paper.uid for s in ranking.selected[:SHOWN]]

    return shows


digest_ranking = digest_shows()


def keyword_order(day: Day, points: np.ndarray) -> list[int]:
    """The top SHOWN of the keyword digest's eligible papers, by ``points``."""
    chosen = np.flatnonzero(day.eligible)
    uids = np.array([p.uid for p in day.papers])
    order = chosen[np.lexsort((uids[chosen], -points[chosen]))][:SHOWN]
    return uids[order].tolist()


def blended(model: Model, beta: float) -> Shows:
    """A per-reader model's scores blended with the keyword score on the profile's scale."""

    def shows(profile: Profile, day: Day, reader: Reader) -> list[int]:
        best = np.sort(day.scores[day.eligible])[::-1][:SHOWN]
        points = day.scores / max(float(best.mean()) if len(best) else 1.0, 1e-9)
        learned = model(day, reader) if reader.up else None
        if learned is not None:
            points = points + beta * (learned - learned.mean()) / (learned.std() + 1e-9)
        return keyword_order(day, points)

    return shows


@functools.cache
def _vectoriser(corpus: Corpus):  # type: ignore[no-untyped-def]
    """The TF-IDF vectoriser of a day's corpus, fitted once (interests share the days)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from digest.rank.similar import _analyse

    return TfidfVectorizer(analyzer=_analyse, sublinear_tf=True).fit(corpus.papers)


@functools.cache
def _day_vectors(day: Day):  # type: ignore[no-untyped-def]
    """The TF-IDF vectors of a day's papers, made once."""
    return _vectoriser(day.corpus).transform(day.papers)


def logistic(day: Day, reader: Reader) -> np.ndarray | None:
    from sklearn.linear_model import LogisticRegression

    if not reader.down and not reader.unshown:
        return None
    train = [*reader.up, *reader.down, *reader.unshown]
    features = _vectoriser(day.corpus).transform(train)
    labels = [1] * len(reader.up) + [0] * (len(train) - len(reader.up))
    weights = [1.0] * (len(reader.up) + len(reader.down)) + [WEAK] * len(reader.unshown)
    model = LogisticRegression(class_weight="balanced", max_iter=2000)
    model.fit(features, labels, sample_weight=weights)
    return model.decision_function(_day_vectors(day))


def rocchio(day: Day, reader: Reader) -> np.ndarray | None:
    features = _vectoriser(day.corpus).transform([*reader.up, *reader.down])
    query = np.asarray(features[: len(reader.up)].mean(axis=0)).ravel()
    if reader.down:
        query -= 0.5 * np.asarray(features[len(reader.up) :].mean(axis=0)).ravel()
    return _day_vectors(day) @ query


def _fit_graded(features: Any, reader: Reader, candidates: Any) -> np.ndarray | None:
    """A logistic model of every earlier paper's label (1 or 2 against 0), scoring the
    day's papers: ``features`` and ``candidates`` are the vectors of reader.graded's
    papers and of the day's."""
    from sklearn.linear_model import LogisticRegression

    labels = [1 if grade >= 1 else 0 for _paper, grade in reader.graded]
    if len(set(labels)) < 2:
        return None
    model = LogisticRegression(class_weight="balanced", C=ORACLE_C, max_iter=3000)
    return model.fit(features, labels).decision_function(candidates)


def oracle(day: Day, reader: Reader) -> np.ndarray | None:
    """The bound on TF-IDF vectors: fitted on the labels of every earlier paper."""
    features = _vectoriser(day.corpus).transform([paper for paper, _grade in reader.graded])
    return _fit_graded(features, reader, _day_vectors(day))


def encoded(days: dict[str, list[Day]]) -> Meanings | None:
    """The [semantic] extra's MiniLM embeddings of every paper of ``days`` (made once),
    as a function of papers; None without the extra."""
    from digest.config import PACKAGED_MODEL
    from digest.errors import ConfigError
    from digest.store.embeddings import embedded_text

    try:
        from digest.embed import Encoder, resolve_model

        folder, name = resolve_model(PACKAGED_MODEL, Path(__file__).resolve().parent)
        encoder = Encoder(folder, name)
    except (ImportError, ConfigError) as error:
        print(f"left out what needs embeddings: {error}", file=sys.stderr)
        return None
    papers = {p.uid: p for every in days.values() for day in every for p in day.papers}
    vectors = encoder.encode([embedded_text(p) for p in papers.values()])
    row = {uid: k for k, uid in enumerate(papers)}

    def of(found: Sequence[StoredPaper]) -> np.ndarray:
        return vectors[[row[p.uid] for p in found]]

    return of


def minilm_oracle(of: Meanings) -> Model:
    """The bound on the embeddings ``of`` gives."""

    def model(day: Day, reader: Reader) -> np.ndarray | None:
        return _fit_graded(of([p for p, _g in reader.graded]), reader, of(day.papers))

    return model


def prepare(seeds: Path, listings: bool = False) -> tuple[list[Interest], dict[str, list[Day]]]:
    """Each interest's days, with the keyword digest's scores (no ratings) of each: the
    seed captures' three, then with ``listings`` the days of the recorded listings (the
    ``fixtures`` folder beside the seeds) in date order, graded in qrels-listings.tsv."""
    by_id = load_papers(seeds)
    interests, labels = load_labels()
    days = days_of(by_id)
    if listings:
        days += listing_days(seeds.parent / "fixtures", len(by_id) + 1)
        for name, grades in load_labels(LISTING_QRELS)[1].items():
            labels[name].update(grades)
    seen, corpora = [], []
    for day in days:
        seen.extend(paper for _id, paper in day)
        corpora.append(Corpus(list(seen)))
    found: dict[str, list[Day]] = {}
    for interest in interests:
        profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=SHOWN)
        found[interest.name] = []
        for number, (day, corpus) in enumerate(zip(days, corpora, strict=True)):
            papers = [paper for _id, paper in day]
            [plain] = rank_many([Request(profile, papers)], corpus)
            grades = {p.uid: labels[interest.name].get(i, 0) for i, p in day}
            found[interest.name].append(
                Day(number + 1, papers, grades, corpus, plain.scores, plain.eligible)
            )
    return interests, found


def simulate(interest: Interest, days: list[Day], shows: Shows, rate: int) -> list[dict]:
    """One reader's later days: NDCG@10 with its ratings and without, and the ceiling."""
    profile = Profile.build(interest.keywords, exclude=interest.exclude, max_papers=SHOWN)
    reader, rows = Reader(), []
    for day in days:
        shown = shows(profile, day, reader)
        if day.number > 1 and any(g >= 1 for g in day.grades.values()):
            eligible = [p.uid for p, ok in zip(day.papers, day.eligible, strict=True) if ok]
            best = sorted(eligible, key=lambda uid: -day.grades[uid])
            rows.append(
                {
                    "day": day.number,
                    "with_ratings": ndcg(shown, day.grades, SHOWN),
                    "without": ndcg(keyword_order(day, day.scores), day.grades, SHOWN),
                    "ceiling": ndcg(best, day.grades, SHOWN),
                }
            )
        by_uid = {p.uid: p for p in day.papers}
        for uid in shown[:rate]:
            (reader.up if day.grades[uid] >= 1 else reader.down).append(by_uid[uid])
        seen = set(shown)
        reader.unshown += [p for p in day.papers if p.uid not in seen]
        reader.graded += [(p, day.grades[p.uid]) for p in day.papers]
    return rows


def gain(rows: list[dict]) -> float:
    return sum(r["with_ratings"] - r["without"] for r in rows) / max(len(rows), 1)


def error_over_interests(system: dict[str, dict]) -> float:
    """The standard error of a system's mean gain, over interests: each interest's mean
    gain over its later days is one sample (an interest's days are not independent of
    each other: its profile and its ratings carry over)."""
    return standard_error([gain(row["days"]) for row in system.values() if row["days"]])


def held_out(
    interests: list[Interest], days: dict[str, list[Day]], model: Model, rate: int
) -> dict[str, dict]:
    """For each interest, the days with the beta that gains most on the other interests."""
    runs = {
        beta: {i.name: simulate(i, days[i.name], blended(model, beta), rate) for i in interests}
        for beta in BETAS
    }
    found = {}
    for interest in interests:

        def on_others(beta: float, name: str = interest.name) -> float:
            return sum(gain(rows) for other, rows in runs[beta].items() if other != name)

        beta = max(BETAS, key=on_others)
        found[interest.name] = {"beta": beta, "days": runs[beta][interest.name]}
    return found


def run(
    seeds: Path,
    rate: int,
    learners: bool,
    listings: bool = False,
    bound: bool = False,
    semantic: bool = False,
) -> dict[str, dict]:
    interests, days = prepare(seeds, listings)
    systems = {
        "digest": {
            i.name: {"days": simulate(i, days[i.name], digest_ranking, rate)} for i in interests
        }
    }
    of = encoded(days) if semantic or bound else None
    if semantic and of is not None:
        shows = digest_shows(of)
        systems["digest+meaning"] = {
            i.name: {"days": simulate(i, days[i.name], shows, rate)} for i in interests
        }
    if learners:
        systems["logistic"] = held_out(interests, days, logistic, rate)
        systems["rocchio"] = held_out(interests, days, rocchio, rate)
    if bound:
        systems["oracle"] = held_out(interests, days, oracle, rate)
        if of is not None:
            systems["oracle-minilm"] = held_out(interests, days, minilm_oracle(of), rate)
    return systems


def main(argv: list[str]) -> int:
    seeds = seeds_argument([a for a in argv if not a.isdigit()])
    if seeds is None:
        return 2
    rate = int(argv[argv.index("--rate") + 1]) if "--rate" in argv else SHOWN
    flags = ("--learners", "--listings", "--oracle", "--semantic")
    systems = run(seeds, rate, *(flag in argv for flag in flags))
    if "--json" in argv:
        print(json.dumps(systems, indent=2))
        return 0
    ours = systems["digest"]
    print(f"{'interest':<28}{'day':>4}{'without':>9}" + "".join(f"{s:>15}" for s in systems)
          + f"{'ceiling':>9}")  # fmt: skip
    for name, row in ours.items():
        for k, d in enumerate(row["days"]):
            cells = "".join(
                f"{systems[s][name]['days'][k]['with_ratings']:>15.3f}" for s in systems
            )
            print(f"{name:<28}{d['day']:>4}{d['without']:>9.3f}{cells}{d['ceiling']:>9.3f}")
    every = [d for row in ours.values() for d in row["days"]]
    without = sum(d["without"] for d in every) / len(every)
    ceiling = sum(d["ceiling"] for d in every) / len(every)
    print(f"\nmean NDCG@10 of the {len(every)} later days (the reader rates the top {rate}):")
    print(f"  without ratings {without:.3f}; ceiling of the eligible papers {ceiling:.3f}")
    for system, rows in systems.items():
        mean = sum(d["with_ratings"] for r in rows.values() for d in r["days"]) / len(every)
        error = error_over_interests(rows)
        print(f"  {system:<13} {mean:.3f}  gain {mean - without:+.3f} (standard error {error:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
