"""Acceptance: on the labelled seed papers our ranking beats both baselines.

Runs the evaluation harness of benchmarks/relevance (MAP and NDCG@30 against substring
counting and rank_bm25's BM25Okapi, on the same keyword profiles).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from conftest import FIXTURES, REPO, SEEDS, need_shared

RELEVANCE = REPO / "benchmarks" / "relevance"


def load_script(name: str):
    """A script of benchmarks/relevance, imported the way its siblings import it."""
    sys.path.insert(0, str(RELEVANCE))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(RELEVANCE))


def load_harness():
    return load_script("evaluate")


def test_our_ranking_beats_the_baselines_on_the_labelled_set():
    seeds = need_shared(SEEDS)
    results = load_harness().evaluate(seeds)
    assert len(results) >= 6

    def mean(system: str, metric: str) -> float:
        return sum(r[system][metric] for r in results.values()) / len(results)

    best = max(("substring", "bm25"), key=lambda s: mean(s, "map"))
    assert mean("ours", "map") >= mean(best, "map") + 0.075  # measured +0.088
    assert mean("ours", "ndcg30") >= max(mean("substring", "ndcg30"), mean("bm25", "ndcg30"))
    assert_near_bm25(results, ("map", "ndcg30"))


def test_the_score_cut_keeps_the_relevant_papers_and_drops_the_rest():
    """What the digest delivers (past the score cut) is what a reader sees: it must hold
    nearly every relevant paper, in an order still better than BM25's, and leave out a
    good part of the papers that are not."""
    seeds = need_shared(SEEDS)
    results = load_harness().evaluate(seeds)

    def mean(system: str, metric: str) -> float:
        return sum(r[system][metric] for r in results.values()) / len(results)

    assert mean("ours", "recall") >= 0.95
    assert min(r["ours"]["recall"] for r in results.values()) >= 0.85
    # 226 papers: without the cut about 219 were delivered, 90% of them irrelevant.
    assert mean("ours", "delivered") <= 130
    assert mean("ours", "irrelevant") <= mean("bm25", "irrelevant") - 0.05
    # Issue criterion 1's means: +0.08 MAP and +0.03 NDCG@30 (measured +0.088, +0.042).
    assert mean("ours", "delivered_map") >= mean("bm25", "delivered_map") + 0.08
    assert mean("ours", "delivered_ndcg30") >= mean("bm25", "delivered_ndcg30") + 0.03
    assert_near_bm25(results, ("delivered_map", "delivered_ndcg30"))


def assert_near_bm25(results: dict, metrics: tuple[str, ...]) -> None:
    """No interest far below BM25 on any metric, and at most one a little below: the
    labels of one interest move by a few hundredths when a grade-1 paper at rank 30
    moves by ten places."""
    gaps = {
        (name, metric): row["ours"][metric] - row["bm25"][metric]
        for name, row in results.items()
        for metric in metrics
    }
    assert min(gaps.values()) >= -0.08, gaps
    assert len({name for (name, _m), gap in gaps.items() if gap < -0.03}) <= 1, gaps


def test_the_lead_over_bm25_holds_for_other_readers_profiles():
    """profiles.toml's readers type two keywords, or eight in other words, for the same
    interests: the constants were never chosen on them, and what is delivered must still
    beat BM25 on average and on nearly every interest, without losing relevant papers."""
    seeds = need_shared(SEEDS)
    harness = load_harness()
    for variant, interests in harness.other_profiles().items():
        results = harness.evaluate(seeds, interests=interests)
        assert len(results) == 12
        means = harness.means_of(results)
        ours, bm25 = means["ours"], means["bm25"]
        assert ours["delivered_map"] >= bm25["delivered_map"] + 0.06, variant
        assert ours["delivered_ndcg30"] >= bm25["delivered_ndcg30"] + 0.03, variant
        assert ours["recall"] >= 0.95, variant
        # Per interest a few relevant papers decide (bootstrap.py): none far below BM25.
        for name, row in results.items():
            for metric in ("delivered_map", "delivered_ndcg30"):
                assert row["ours"][metric] >= row["bm25"][metric] - 0.06, (variant, name, metric)


def test_a_two_keyword_profile_gets_as_much_expansion_as_a_longer_one():
    """The related words weigh a fixed number of keywords, not a share of the profile's:
    a short profile, which says least of its topic, must not get less expansion."""
    from digest.rank import Corpus
    from digest.rank.expand import expand
    from digest.rank.profile import Profile
    from digest.rank.score import DEFAULT_WEIGHTS

    corpus = Corpus(list(load_harness().load_papers(need_shared(SEEDS)).values()))
    short = Profile.build(["quantization", "pruning"]).interests[0]
    words = ["quantization", "pruning", "distillation", "low-bit", "sparsity", "compression"]
    longer = Profile.build([*words, "binarization", "weight sharing"]).interests[0]
    found = expand(corpus, [short, longer], DEFAULT_WEIGHTS)
    totals = [sum(related.weights) for related in found]
    assert all(len(related.terms) == DEFAULT_WEIGHTS.related_terms for related in found)
    assert totals[0] == pytest.approx(DEFAULT_WEIGHTS.related)
    assert totals[1] == pytest.approx(DEFAULT_WEIGHTS.related)


def test_the_lead_over_bm25_holds_on_papers_no_constant_was_chosen_on():
    """The recorded daily listings (qrels-listings.tsv) were graded before any ranking
    ran on them, and nothing is tuned on them: what the digest delivers must beat BM25
    there too, for interests.toml's profiles and for the other readers' (measured: +0.079
    MAP and +0.058 NDCG@30; short profiles +0.088 / +0.040, long +0.089 / +0.089).

    Only the means are held to it: four interests have five relevant papers or fewer
    among the 264, and one paper moves their figures by a tenth."""
    harness = load_harness()
    labelled = harness.listing_set(need_shared(FIXTURES))
    assert len(labelled.papers) == 264
    sets = {"interests.toml": None, **harness.other_profiles()}
    for variant, interests in sets.items():
        means = harness.means_of(harness.evaluate_set(labelled, interests=interests))
        ours, bm25 = means["ours"], means["bm25"]
        assert ours["delivered_map"] >= bm25["delivered_map"] + 0.06, variant
        assert ours["delivered_ndcg30"] >= bm25["delivered_ndcg30"] + 0.03, variant
        assert ours["recall"] >= 0.9, variant


def test_both_sets_of_labels_grade_exactly_the_papers_they_name(capsys):
    seeds = need_shared(SEEDS)
    need_shared(FIXTURES)
    assert load_script("check_labels").main(["check_labels.py", str(seeds)]) == 0
    assert "OK: all checks passed" in capsys.readouterr().out


def test_a_day_s_digest_is_not_always_full():
    sizes = load_harness().daily_sizes(need_shared(SEEDS))
    assert min(sizes) < 20 <= max(sizes)


@pytest.mark.slow
def test_query_expansion_constants_hold_on_an_interest_they_were_not_fitted_on():
    """Leave one interest out: constants chosen on the other interests, scored on it."""
    seeds = need_shared(SEEDS)
    harness = load_harness()
    held = harness.leave_one_out(seeds)
    bm25 = harness.means_of(harness.evaluate(seeds))["bm25"]

    def mean(metric: str) -> float:
        return sum(r[metric] for r in held.values()) / len(held)

    assert mean("delivered_map") >= bm25["delivered_map"] + 0.07  # measured +0.078
    assert mean("delivered_ndcg30") >= bm25["delivered_ndcg30"] + 0.035  # +0.044
    assert mean("recall") >= 0.95


def test_the_metrics_are_the_textbook_ones():
    harness = load_harness()
    grades = {1: 2, 2: 0, 3: 1, 4: 0}
    # relevant = grade >= 1; AP = mean of precision at each relevant hit
    assert harness.average_precision([1, 2, 3, 4], grades) == (1 / 1 + 2 / 3) / 2
    assert harness.average_precision([2, 4, 1, 3], grades) == (1 / 3 + 2 / 4) / 2
    assert harness.ndcg([1, 3, 2, 4], grades) == 1.0  # ideal order
    assert 0 < harness.ndcg([2, 4, 3, 1], grades) < 1


def test_the_bootstrap_scores_a_draw_as_the_harness_scores_the_same_papers():
    """A draw counts a paper drawn twice as two papers side by side, and drops one not
    drawn: its MAP and NDCG@30 are the harness's on that list of papers."""
    harness, bootstrap = load_harness(), load_script("bootstrap")
    grades = np.array([2, 0, 1, 0, 1])  # paper 4 is relevant and not delivered
    delivered = bootstrap.Delivered(np.array([0, 1, 2, 3]), grades)
    as_is = {i: int(g) for i, g in enumerate(grades)}
    ones = np.ones(5, dtype=np.int64)
    assert bootstrap.average_precision(delivered, ones) == harness.average_precision(
        [0, 1, 2, 3], as_is
    )
    assert bootstrap.ndcg(delivered, ones) == pytest.approx(harness.ndcg([0, 1, 2, 3], as_is))
    # Paper 0 drawn twice (its copy is "0b"), paper 2 not drawn.
    drawn = {"0": 2, "0b": 2, "1": 0, "3": 0, "4": 1}
    counts = np.array([2, 1, 0, 1, 1])
    assert bootstrap.average_precision(delivered, counts) == pytest.approx(
        harness.average_precision(["0", "0b", "1", "3"], drawn)
    )
    assert bootstrap.ndcg(delivered, counts) == pytest.approx(
        harness.ndcg(["0", "0b", "1", "3"], drawn)
    )


def test_the_bootstrap_starts_from_the_harness_s_own_gaps_to_bm25():
    """Column 0 of the bootstrap is the set as it is: each interest's delivered gap to
    BM25 must be the one evaluate.py reports, and the draws must spread around it."""
    harness, bootstrap = load_harness(), load_script("bootstrap")
    labelled = harness.seed_set(need_shared(SEEDS))
    results = harness.evaluate_set(labelled)
    found = bootstrap.gaps(bootstrap.delivered_lists(labelled), resamples=200)
    for metric, table in (("delivered_map", found["delivered MAP"]),
                          ("delivered_ndcg30", found["delivered NDCG@30"])):  # fmt: skip
        expected = [r["ours"][metric] - r["bm25"][metric] for r in results.values()]
        assert table[:, 0] == pytest.approx(expected)
        low, high = np.percentile(table[:, 1:], [5, 95], axis=1)
        assert (low < high).all()
        assert (low <= table[:, 0] + 1e-9).mean() > 0.8 and (
            high >= table[:, 0] - 1e-9
        ).mean() > 0.8


@pytest.mark.parametrize(
    ("listings", "at_least"),
    [(False, -0.01), (True, 0.015)],
    ids=["three seed days", "thirteen days with the listings"],
)
def test_a_simulated_reader_s_ratings_make_its_later_digests_better(listings, at_least):
    """The reader of benchmarks/relevance/simulate.py rates the top 10 of each day. Over
    the 13 days of the seeds and the recorded listings, its ratings must make the later
    days' NDCG@10 better than the keywords' alone (measured: +0.024 over 72 days). Over
    the three seed days alone, with 10 to 20 ratings to learn from, they must not cost
    more than 0.01 (measured: -0.007 over 18 days; one relevant paper at rank 10 of one
    day swapped for another paper moves that mean by 0.002). No order of the keyword
    digest's own papers beats the ceiling the harness reports."""
    seeds = need_shared(SEEDS)
    if listings:
        need_shared(FIXTURES)
    simulate = load_script("simulate")
    interests, days = simulate.prepare(seeds, listings)
    later = []
    for interest in interests:
        rows = simulate.simulate(interest, days[interest.name], simulate.digest_ranking, 10)
        later += rows
        assert sum(d.number > 1 for d in days[interest.name]) >= len(rows)
        for row in rows:
            assert 0.0 <= row["without"] <= row["ceiling"] <= 1.0, interest.name
    assert len(later) >= (60 if listings else 12)
    gain = sum(r["with_ratings"] - r["without"] for r in later) / len(later)
    assert gain >= at_least
