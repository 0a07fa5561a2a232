"""Ranking v1: whole-word phrase matching, field weights, exclusions, authors, stable order."""

from __future__ import annotations

from datetime import date

from digest.models import Paper, StoredPaper
from digest.rank import Profile, highlight_spans, rank


def papers(*specs: tuple[str, str] | tuple[str, str, tuple[str, ...]]) -> list[StoredPaper]:
    out = []
    for uid, spec in enumerate(specs, start=1):
        title, abstract, *rest = spec
        authors = rest[0] if rest else ()
        out.append(
            StoredPaper(
                uid, Paper(title=title, abstract=abstract, authors=authors), date(2026, 3, 13)
            )
        )
    return out


def titles(ranking) -> list[str]:
    return [s.paper.paper.title for s in ranking.selected]


def test_phrases_match_whole_words_in_order_only():
    pool = papers(
        ("Linear Attention at Scale", ""),
        ("Nonlinear attention heads", ""),
        ("Attention, linear in time", ""),
        ("Linear-Attention Transformers", ""),
        ("Pruninglike heuristics", "We study pruninglike methods."),
    )
    ranking = rank(Profile.build(keywords=["linear attention", "pruning"]), pool)
    assert titles(ranking) == ["Linear Attention at Scale", "Linear-Attention Transformers"]


def test_title_matches_outrank_abstract_matches_and_explain_where():
    pool = papers(
        ("A study of models", "We use a state space model throughout."),
        ("State Space Models for Audio", "Nothing else here."),
    )
    ranking = rank(Profile.build(keywords=["state space model"]), pool)
    assert titles(ranking) == ["State Space Models for Audio", "A study of models"]
    top, second = ranking.selected
    assert [(m.term, m.field, m.count) for m in top.matches] == [("state space model", "title", 1)]
    assert [(m.term, m.field) for m in second.matches] == [("state space model", "abstract")]
    assert top.score > second.score > 0


def test_more_mentions_score_more_with_diminishing_returns():
    pool = papers(("x", "mamba"), ("y", "mamba mamba mamba"), ("z", "mamba " * 30))
    score = {
        s.paper.paper.title: s.score for s in rank(Profile.build(keywords=["mamba"]), pool).selected
    }
    assert score["x"] < score["y"] < score["z"]
    assert score["z"] < 5 * score["x"]  # thirty mentions are not thirty times one


def test_exclusions_win_over_any_match():
    pool = papers(("Mamba: a survey", "All about mamba."), ("Mamba for vision", "Mamba again."))
    ranking = rank(Profile.build(keywords=["mamba"], exclude=["survey"]), pool)
    assert titles(ranking) == ["Mamba for vision"]
    assert [s.paper.paper.title for s in ranking.considered] == ["Mamba: a survey"]


def test_authors_boost_and_match_full_names_or_surnames():
    pool = papers(
        ("Plain paper", "nothing", ("Ada Lovelace",)),
        ("Another paper", "nothing", ("Yann LeCun", "Someone Else")),
        ("Third paper", "nothing", ("Alan Turing",)),
    )
    ranking = rank(Profile.build(authors=["LeCun", "Ada Lovelace", "Turing Alan"]), pool)
    assert sorted(titles(ranking)) == ["Another paper", "Plain paper"]
    assert all(m.field == "authors" for s in ranking.selected for m in s.matches)


def test_empty_profile_takes_every_paper_in_stored_order():
    pool = papers(("b", ""), ("a", ""), ("c", ""))
    ranking = rank(Profile.build(), pool)
    assert titles(ranking) == ["b", "a", "c"]
    assert ranking.considered == []


def test_max_papers_keeps_the_best_and_considers_the_rest():
    pool = papers(("mamba one", ""), ("two", "mamba"), ("mamba mamba three", ""), ("four", ""))
    ranking = rank(Profile.build(keywords=["mamba"], max_papers=2), pool)
    assert len(ranking.selected) == 2
    assert {s.paper.paper.title for s in ranking.considered} == {"two", "four"}


def test_ties_are_broken_by_stored_order_so_ranking_is_deterministic():
    pool = papers(("mamba z", ""), ("mamba a", ""), ("mamba m", ""))
    first = titles(rank(Profile.build(keywords=["mamba"]), pool))
    assert first == ["mamba z", "mamba a", "mamba m"]
    assert titles(rank(Profile.build(keywords=["mamba"]), list(reversed(pool)))) == first


def test_case_unicode_plurals_and_quotes():
    pool = papers(("Diffusion MODELS", ""), ("Ｍａｍｂａ layers", ""), ("Processes", ""))
    ranking = rank(Profile.build(keywords=['"diffusion model"', "mamba", "process"]), pool)
    assert sorted(titles(ranking)) == ["Diffusion MODELS", "Processes", "Ｍａｍｂａ layers"]


def test_highlight_spans_mark_exactly_what_matched():
    text = "Linear-attention beats nonlinear attention; linear attention wins."
    spans = highlight_spans(text, ["linear attention"])
    assert [text[a:b] for a, b in spans] == ["Linear-attention", "linear attention"]
