"""Ranking: every profile feature on hand-made papers, and determinism."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from digest.models import Paper, StoredPaper
from digest.rank import Corpus, Profile, TermSyntaxError, Weights, highlight_spans, parse_term, rank
from digest.rank.score import BELOW_FLOOR, LEFT_OUT, Request, rank_many
from digest.render.context import paper_view, reasons_of

DAY = date(2026, 3, 13)
FILLER = [  # background papers: they make common words common
    ("A study of neural networks", "We train a model on data and evaluate the model."),
    ("Learning representations", "We propose a method. Our model learns from data."),
    ("Benchmarks for models", "A dataset and an evaluation of many models on tasks."),
    ("Scaling laws revisited", "Larger models trained on more data perform better."),
]


def papers(*specs, background: bool = True) -> list[StoredPaper]:
    made = []
    for uid, spec in enumerate(specs, start=1):
        title, abstract, *rest = spec
        extra = rest[0] if rest else {}
        made.append(StoredPaper(uid, Paper(title=title, abstract=abstract, **extra), DAY))
    if background:
        offset = len(made)
        made += [
            StoredPaper(offset + i, Paper(title=t, abstract=a), DAY)
            for i, (t, a) in enumerate(FILLER, 1)
        ]
    return made


def ranked(profile: Profile, pool: list[StoredPaper], liked=(), weights=None) -> list[str]:
    kwargs = {"weights": weights} if weights else {}
    candidates = [p for p in pool if p.paper.title not in {t for t, _ in FILLER}]
    return [
        s.paper.paper.title
        for s in rank(profile, Corpus(pool), candidates, liked, **kwargs).selected
    ]


# --- matching ----------------------------------------------------------------------------


def test_words_match_whole_tokens_only():
    pool = papers(
        ("Pruning large models", ""), ("Pruninglike heuristics", "We study pruninglike methods.")
    )
    assert ranked(Profile.build(["pruning"]), pool) == ["Pruning large models"]


def test_stemming_matches_inflections():
    pool = papers(
        ("Quantization of transformers", ""),
        ("Quantized weights", ""),
        ("Quantizing activations", ""),
        ("Unrelated", "no"),
    )
    assert sorted(ranked(Profile.build(["quantization"]), pool)) == [
        "Quantization of transformers",
        "Quantized weights",
        "Quantizing activations",
    ]


def test_stemming_keeps_ing_nominals_apart_from_plural_nouns():
    pool = papers(
        ("Reasoning in language models", ""),
        ("Two reasons for caution", "The reasons are many."),
        ("Models reasoned step by step", ""),
        ("Embeddings of graphs", ""),
    )
    # Snowball stems "reasoning" and "reasons" alike; they are different words.
    assert ranked(Profile.build(["reasoning"]), pool) == [
        "Reasoning in language models",
        "Models reasoned step by step",
    ]
    assert "Reasoning in language models" not in ranked(Profile.build(["reasons"]), pool)
    assert ranked(Profile.build(["embedding"]), pool) == ["Embeddings of graphs"]
    text = "For two reasons, reasoning helps."
    assert [text[a:b] for a, b in highlight_spans(text, ["reasoning"])] == ["reasoning"]


def test_an_acronym_matches_its_plural_and_a_latin_word_keeps_its_s():
    pool = papers(
        ("Scaling LLMs to long inputs", "Many LLMs forget."),
        ("GNNs on molecules", ""),
        ("Neural solvers for PDEs", "Learned PDEs solvers on GPUs."),
        ("A virus of the mind", ""),
        ("Where to focus attention", ""),
    )
    assert ranked(Profile.build(["LLM"]), pool) == ["Scaling LLMs to long inputs"]
    assert ranked(Profile.build(["GNN"]), pool) == ["GNNs on molecules"]
    assert ranked(Profile.build(["PDE solvers"]), pool) == ["Neural solvers for PDEs"]
    assert ranked(Profile.build(["GPU"]), pool) == ["Neural solvers for PDEs"]
    assert ranked(Profile.build(["viru"]), pool) == []  # "virus" is not a plural
    assert ranked(Profile.build(["focused"]), pool) == ["Where to focus attention"]
    text = "Two LLMs and one LLM."
    assert [text[a:b] for a, b in highlight_spans(text, ["LLM"])] == ["LLMs", "LLM"]


def test_web_addresses_in_abstracts_neither_score_nor_get_highlighted():
    abstract = "Code: https://github.com/org/mamba-kernels and www.Mamba.org/docs."
    pool = papers(("Fast kernels", abstract), ("Mamba layers", "A github repository."))
    assert ranked(Profile.build(["mamba"]), pool) == ["Mamba layers"]
    assert ranked(Profile.build(["github"]), pool) == ["Mamba layers"]
    assert highlight_spans(abstract, ["mamba", "github", "code"]) == [(0, 4)]


def test_phrases_respect_word_boundaries_and_rank_above_scattered_words():
    pool = papers(
        ("Linear attention at scale", ""),
        ("Nonlinear attention heads", ""),
        ("Attention is linear in time", ""),
        ("Linear-Attention Transformers", ""),
    )
    order = ranked(Profile.build(["linear attention"]), pool)
    assert set(order[:2]) == {"Linear attention at scale", "Linear-Attention Transformers"}
    assert "Nonlinear attention heads" not in order[:3]  # "nonlinear" is not "linear"


def test_quoted_terms_are_exact_and_phrase_only():
    pool = papers(
        ("ViT backbones", ""),
        ("Vits are fun", ""),
        ("KV cache eviction", ""),
        ("A cache for KV stores", ""),
    )
    assert ranked(Profile.build(['"vit"']), pool) == ["ViT backbones"]
    assert ranked(Profile.build(['"kv cache"']), pool) == ["KV cache eviction"]


def test_prefix_wildcards():
    pool = papers(
        ("Quantizers for LLMs", ""), ("Quantum computing", ""), ("Post-training quantisation", "")
    )
    assert ranked(Profile.build(["quantiz*"]), pool) == ["Quantizers for LLMs"]
    assert sorted(ranked(Profile.build(["quant*"]), pool)) == [
        "Post-training quantisation",
        "Quantizers for LLMs",
        "Quantum computing",
    ]
    with pytest.raises(TermSyntaxError, match="at least 3 letters"):
        parse_term("qu*")


def test_case_unicode_and_latex_insensitive():
    pool = papers(
        (Paper.from_source(title=r"$\mathcal{O}(n)$ Ｍａｍｂａ layers").title, ""),
        ("MAMBA for vision", ""),
    )
    assert len(ranked(Profile.build(["mamba"]), pool)) == 2


# --- weights, exclusions, requirements ---------------------------------------------------


def test_weights_change_the_order():
    pool = papers(("Mamba layers", ""), ("Diffusion models", ""))
    assert (
        ranked(Profile.build(["mamba", "diffusion"]), pool)[0] == "Mamba layers"
    )  # stored first wins ties
    assert ranked(Profile.build(["mamba", "diffusion^3"]), pool)[0] == "Diffusion models"
    assert (
        ranked(Profile.build(["mamba", {"term": "diffusion", "weight": 3}]), pool)[0]
        == "Diffusion models"
    )


def test_exclusions_win_over_any_match():
    pool = papers(("Mamba: a survey", "All about mamba."), ("Mamba for vision", "Mamba again."))
    ranking = rank(Profile.build(["mamba"], exclude=["survey"]), Corpus(pool), pool[:2])
    assert [s.paper.paper.title for s in ranking.selected] == ["Mamba for vision"]
    assert [s.paper.paper.title for s in ranking.considered] == ["Mamba: a survey"]


def test_require_keeps_only_papers_with_one_of_its_terms():
    pool = papers(("Mamba for language", "We use text."), ("Mamba for vision", "We use images."))
    assert ranked(Profile.build(["mamba"], require=["images", "video"]), pool) == [
        "Mamba for vision"
    ]


def test_title_matches_outrank_abstract_matches():
    pool = papers(
        ("A study", "We use a state space model throughout."),
        ("State space models for audio", "Nothing else."),
    )
    assert ranked(Profile.build(["state space model"]), pool) == [
        "State space models for audio",
        "A study",
    ]


def test_common_words_weigh_less_than_rare_ones():
    pool = papers(("Model one", "model model"), ("Mamba one", "mamba"))
    scores = {
        s.paper.paper.title: s.score
        for s in rank(Profile.build(["model", "mamba"]), Corpus(pool), pool[:2]).selected
    }
    assert scores["Mamba one"] > scores["Model one"]


# --- signals -----------------------------------------------------------------------------


def test_authors_boost_by_full_name_or_surname():
    pool = papers(
        ("Plain paper", "nothing", {"authors": ("Ada Lovelace",)}),
        ("Another paper", "nothing", {"authors": ("Yann LeCun", "Someone Else")}),
        ("Third paper", "nothing", {"authors": ("Alan Turing",)}),
    )
    assert sorted(
        ranked(Profile.build(authors=["LeCun", "Ada Lovelace", "Turing Alan"]), pool)
    ) == ["Another paper", "Plain paper"]


def test_categories_boost_or_keep():
    pool = papers(
        ("Mamba in vision", "", {"categories": ("cs.CV",)}),
        ("Mamba in language", "", {"categories": ("cs.CL", "cs.LG")}),
        ("Mamba from a capture", ""),  # categories unknown
    )
    boost = Profile.build(["mamba"], categories=["cs.LG"])
    assert ranked(boost, pool)[0] == "Mamba in language"
    keep = Profile.build(["mamba"], categories=["cs.LG"], category_mode="keep")
    assert ranked(keep, pool) == ["Mamba in language", "Mamba from a capture"]


def test_sources_limit_what_a_reader_gets():
    pool = papers(
        ("Mamba A", "", {"sources": ("hf",)}),
        ("Mamba B", "", {"sources": ("arxiv",)}),
        ("Mamba C", "", {"sources": ("arxiv", "hf")}),
    )
    assert ranked(Profile.build(["mamba"], sources=["hf"]), pool) == ["Mamba A", "Mamba C"]


def test_popularity_is_log_scaled_and_off_by_default():
    pool = papers(
        ("Mamba quiet", "", {"upvotes": 1}),
        ("Mamba loud", "", {"upvotes": 500, "github_stars": 3000}),
    )
    assert ranked(Profile.build(["mamba"]), pool)[0] == "Mamba quiet"
    scored = rank(Profile.build(["mamba"], popularity_weight=1.0), Corpus(pool), pool[:2]).selected
    assert scored[0].paper.paper.title == "Mamba loud"
    popularity = [m for m in scored[0].matches if m.field == "popularity"]
    assert [m.term for m in popularity] == ["500 upvotes", "3000 GitHub stars"]
    assert popularity[0].points < 10  # log-scaled: 500 upvotes are not 500 points


def test_liked_papers_pull_similar_ones_up():
    liked = StoredPaper(
        100,
        Paper(
            title="Selective state spaces for long sequences",
            abstract="Selective scan recurrence with input-dependent gates for long sequences.",
        ),
        DAY,
    )
    pool = papers(
        (
            "Gated recurrences",
            "A selective scan with input-dependent gates handles long sequences.",
        ),
        ("Image classification", "Convolutions for images."),
    )
    pool.append(liked)
    ranking = rank(Profile.build(liked=["x"]), Corpus(pool), pool[:2], liked=[liked])
    assert [s.paper.paper.title for s in ranking.selected] == ["Gated recurrences"]
    [reason] = [m for m in ranking.selected[0].matches if m.field == "liked"]
    assert reason.term == liked.paper.title


def test_min_score_and_max_papers():
    pool = papers(("mamba mamba", "mamba"), ("one mamba", ""), ("unrelated", ""))
    assert len(ranked(Profile.build(["mamba"], max_papers=1), pool)) == 1
    scores = [s.score for s in rank(Profile.build(["mamba"]), Corpus(pool), pool[:3]).selected]
    assert ranked(Profile.build(["mamba"], min_score=(scores[0] + scores[1]) / 2), pool) == [
        "mamba mamba"
    ]


def test_empty_profile_takes_everything_in_stored_order():
    pool = papers(("b", ""), ("a", ""), ("c", ""), background=False)
    assert ranked(Profile.build(), pool) == ["b", "a", "c"]


def test_interests_become_sections_and_each_paper_goes_to_its_best_one():
    pool = papers(
        ("Video diffusion models", ""),
        ("Chain-of-thought reasoning", ""),
        ("Mamba for video", "diffusion"),
    )
    profile = Profile.build(
        interests=[("Video", ["video", "diffusion"]), ("Reasoning", ["chain-of-thought"])]
    )
    selected = rank(profile, Corpus(pool), pool[:3]).selected
    sections = {s.paper.paper.title: s.section for s in selected}
    assert sections == {
        "Video diffusion models": "Video",
        "Mamba for video": "Video",
        "Chain-of-thought reasoning": "Reasoning",
    }
    order = [s.section for s in selected]
    assert order in (["Video", "Video", "Reasoning"], ["Reasoning", "Video", "Video"])  # grouped
    best = max(selected, key=lambda s: s.score)
    assert order[0] == best.section  # the section of the best paper comes first


def test_explanations_account_for_every_point():
    pool = papers(
        ("Linear attention and mamba", "Mamba uses linear recurrences; attention is linear too."),
        ("Other", ""),
    )
    [top] = rank(
        Profile.build(["linear attention", "mamba"], max_papers=1), Corpus(pool), pool[:2]
    ).selected
    assert top.score == pytest.approx(sum(m.points for m in top.matches), abs=1e-3)
    kinds = {(m.term, m.field, m.kind) for m in top.matches}
    # One Match per keyword and field, named after the strongest way it matched there.
    assert kinds == {
        ("linear attention", "title", "phrase"),
        ("linear attention", "abstract", "near"),
        ("mamba", "title", "phrase"),
        ("mamba", "abstract", "phrase"),
    }


def test_a_keyword_matched_only_by_its_words_names_them():
    pool = papers(
        (
            "Attention sinks",
            "Attention concentrates on the first token of long sequences, across many "
            "layers, heads and model sizes, and the effect grows in a linear way.",
        ),
        ("Other", ""),
    )
    ranking = rank(Profile.build(["linear attention"], max_papers=1), Corpus(pool), pool[:2])
    [match] = [m for m in ranking.selected[0].matches if m.field == "abstract"]
    assert (match.kind, sorted(match.via.split())) == ("word", ["attention", "linear"])
    [title] = [m for m in ranking.selected[0].matches if m.field == "title"]
    assert (title.kind, title.via) == ("word", "attention")


def test_a_phrase_matched_only_in_part_ranks_lower_and_stays_in_the_digest():
    pool = papers(
        ("Linear attention at scale", "We study linear attention."),
        ("Attention sinks", "Where attention goes in long sequences."),
        ("Space heaters", "A model of heat in a room."),
    )
    ranking = rank(Profile.build(["linear attention"]), Corpus(pool), pool[:3])
    assert [s.paper.paper.title for s in ranking.selected] == [
        "Linear attention at scale",
        "Attention sinks",
    ]
    # A word found in most of the recent papers ("model"), alone, does not earn a place.
    ranking = rank(Profile.build(["state space model"]), Corpus(pool), pool)
    assert [s.paper.paper.title for s in ranking.selected] == ["Space heaters"]


def test_the_score_cut_leaves_out_papers_far_below_the_best_of_the_day():
    on_topic = [
        (f"Linear attention, part {i}", "Linear attention makes attention linear in length.")
        for i in range(10)
    ]
    passing = (
        "A survey of sequence models",
        "We review recurrent networks, convolutions, transformers and their training, "
        "tokenisers, datasets, benchmarks, hardware, and one linear layer, at length.",
    )
    elsewhere = [(f"Image study {i}", "Convolutions label pixels.") for i in range(10)]
    pool = papers(*on_topic, passing, *elsewhere)
    profile = Profile.build(["linear attention"], max_papers=50)
    kept = ranked(profile, pool)
    assert kept == [title for title, _abstract in on_topic]
    # Without the floor it matches a rare word of the keyword, so it had a place.
    assert ranked(profile, pool, weights=Weights(floor=0.0))[-1] == passing[0]
    # Alone in its day, the same paper is the best of it, and kept.
    alone = pool[10:]
    assert ranked(profile, alone) == [passing[0]]


def test_a_long_keyword_names_the_words_that_matched_alone():
    keyword = "alpha beta gamma delta epsilon zeta theta iota"  # its last words: bits 6, 7
    pool = papers(
        ("Iota results", "Theta is studied first; much later, iota again, and nothing else."),
        ("Other", ""),
    )
    ranking = rank(Profile.build([keyword], max_papers=1), Corpus(pool), pool[:2])
    [abstract] = [m for m in ranking.selected[0].matches if m.field == "abstract"]
    assert (abstract.kind, abstract.via) == ("word", "theta iota")


def test_a_keyword_has_at_most_sixteen_words():
    with pytest.raises(TermSyntaxError, match="at most 16 words"):
        parse_term(" ".join(f"w{i}" for i in range(17)))
    assert len(parse_term(" ".join(f"w{i}" for i in range(16))).words) == 16


def test_ranking_is_deterministic():
    pool = papers(("mamba z", ""), ("mamba a", ""), ("mamba m", ""))
    first = ranked(Profile.build(["mamba"]), pool)
    assert first == ["mamba z", "mamba a", "mamba m"]  # a tie keeps the stored order
    assert ranked(Profile.build(["mamba"]), list(reversed(pool))) == first
    assert ranked(Profile.build(["mamba"]), pool, weights=Weights()) == first


def test_highlight_spans_mark_exactly_what_matched():
    text = "Linear-attention beats nonlinear attention; quantized models and quantization."
    spans = highlight_spans(text, ["linear attention", "quantiz*", '"models"'])
    assert [text[a:b] for a, b in spans] == [
        "Linear-attention",
        "quantized",
        "models",
        "quantization",
    ]


def test_a_phrase_matched_by_its_words_near_each_other_marks_them_but_not_its_stop_words():
    """A keyword "LLM for code" found as "code ... for ... LLM" marks "code" and "LLM";
    the "for" of every sentence never scored, so it is not marked."""
    pool = papers(("Agents", "We write code for tests with an LLM, for speed and for fun."))
    [item] = rank(Profile.build(["LLM for code"]), Corpus(pool), pool[:1]).selected
    assert any(m.kind == "near" for m in item.matches)
    text = item.paper.paper.abstract
    marked = [text[a:b] for a, b in highlight_spans(text, paper_view(1, item).terms)]
    assert marked == ["code", "LLM"]


def test_every_candidate_left_out_says_the_first_reason_it_is():
    """An excluded word, only common words, and one mention in a very long abstract (its
    points a tenth of the ten best's and less: below the floor) are three reasons."""
    strong = [(f"Mamba {i}", "Mamba layers, mamba blocks, mamba scans.") for i in range(10)]
    passing = "Scaling laws for data, tasks, evaluation, compute, optimisers and tokens; " * 40
    pool = papers(
        *strong,
        ("A survey of mamba", "Mamba, surveyed."),
        ("Learning models", "We train a model on data."),
        ("Scaling laws", passing + "a mamba, in passing."),
    )
    candidates = pool[:13]
    ranking = rank(Profile.build(["mamba"], exclude=["survey"]), Corpus(pool), candidates)
    why = dict(zip([p.paper.title for p in candidates], ranking.left_out.tolist(), strict=True))
    assert LEFT_OUT[why["Mamba 0"]] == ""
    assert LEFT_OUT[why["A survey of mamba"]] == "an excluded word matches"
    assert LEFT_OUT[why["Learning models"]].startswith("no keyword's phrase")
    assert why["Scaling laws"] == BELOW_FLOOR
    assert ranking.floors[12] > 0 and (ranking.left_out == 0).tolist() == ranking.eligible.tolist()


# --- score regularisation ----------------------------------------------------------------


def _two_neighbourhoods() -> list[StoredPaper]:
    """Twenty papers on linear attention, twenty on image segmentation, and two papers
    that mention "linear attention" alike, one among each."""
    on_topic = [
        (f"Kernel feature maps {i}", "Linear attention with kernel feature maps keeps long "
         f"sequences cheap; recurrent state, chunked scans and causal masks, variant {i}.")
        for i in range(20)
    ]  # fmt: skip
    elsewhere = [
        (f"Pixel labels {i}", f"Image segmentation labels pixels; masks, boundaries, "
         f"encoders, decoders and crops of street scenes, variant {i}.")
        for i in range(20)
    ]  # fmt: skip
    among_them = (
        "A recurrent scan",
        "Recurrent state, chunked scans, kernel feature maps, causal masks: linear attention.",
    )
    among_others = (
        "A pixel decoder",
        "Pixel masks, boundaries, street scenes, encoders, decoders, crops: linear attention.",
    )
    return papers(*on_topic, *elsewhere, among_them, among_others, background=False)


def test_a_paper_among_papers_on_the_interest_ranks_above_one_that_only_mentions_it():
    pool = _two_neighbourhoods()
    profile = Profile.build(["linear attention"], max_papers=50)
    ranking = rank(profile, Corpus(pool), pool)
    scored = {s.paper.paper.title: s for s in ranking.selected}
    among_them, among_others = scored["A recurrent scan"], scored["A pixel decoder"]

    def own(item) -> float:
        return sum(m.points for m in item.matches if m.field in ("title", "abstract"))

    assert own(among_them) == pytest.approx(own(among_others), rel=0.05)
    assert among_them.score > among_others.score
    [lent] = [m for m in among_them.matches if m.field == "neighbours"]
    assert lent.term.startswith("Kernel feature maps") and lent.points > 0
    assert not [m for m in among_others.matches if m.field == "neighbours"]
    assert among_them.score == pytest.approx(own(among_them) + lent.points, abs=1e-3)
    # The Why line gives the reader's own keyword first and the closeness last, however
    # much it lends: nearly every paper of a big day has it.
    labels = [r.label for r in reasons_of(among_them)]
    assert labels[0] == "linear attention" and labels[-1] == "close to other matches"
    # Without it, the two are a tie (broken by the order they were stored in).
    alone = rank(profile, Corpus(pool), pool, weights=Weights(neighbours=0.0))
    scores = {s.paper.paper.title: s.score for s in alone.selected}
    assert scores["A recurrent scan"] == pytest.approx(scores["A pixel decoder"], rel=0.05)


def test_a_short_list_of_candidates_is_not_regularised():
    """Among 2 x neighbour_count papers or fewer, a paper's closest are not close."""
    pool = _two_neighbourhoods()
    short = [p for p in pool if not p.paper.title.startswith("Pixel labels")][-12:]
    profile = Profile.build(["linear attention"], max_papers=50)
    ranking = rank(profile, Corpus(pool), short)
    assert all(m.field != "neighbours" for s in ranking.selected for m in s.matches)


# --- many readers at once ------------------------------------------------------------------


def test_ranking_many_readers_together_gives_each_the_same_as_alone(monkeypatch):
    """Readers owed the same papers are scored in one batch; every feature of a profile
    must come out exactly as when the reader is ranked alone."""
    pool = papers(
        (
            "Linear attention at scale",
            "Mamba and linear attention; a survey of kernels.",
            {"authors": ("Ada Lovelace",), "categories": ("cs.LG",), "upvotes": 12},
        ),
        (
            "State space models for video",
            "Selective state space models generate video.",
            {"categories": ("cs.CV",), "upvotes": 3},
        ),
        (
            "Token pruning for vision transformers",
            "We prune visual tokens in attention layers.",
            {"authors": ("Alan Turing",), "categories": ("cs.CV", "cs.LG")},
        ),
        (
            "Quantized kernels",
            "Quantization of attention kernels, linear in sequence length.",
            {"categories": ("cs.AR",)},
        ),
        ("A survey of mamba", "Mamba, state space models and linear recurrences surveyed."),
    )
    candidates = pool[:5]
    corpus = Corpus(pool)
    profiles = [
        Profile.build(["linear attention", "mamba^2"]),
        Profile.build(["state space model", '"ViT"', "quantiz*"], exclude=["survey"]),
        Profile.build(["attention"], require=["kernels"], max_papers=1),
        Profile.build(
            interests=[
                ("Video", ["video generation", "state space"]),
                ("Pruning", ["token pruning"]),
            ]
        ),
        Profile.build(["pruning"], authors=["Lovelace"], popularity_weight=0.5),
        Profile.build(["kernels"], categories=["cs.CV"], category_mode="keep"),
        Profile.build([]),  # every paper
        Profile.build(["nothing matches this"]),
    ]
    alone = [rank(profile, corpus, candidates) for profile in profiles]
    together = rank_many([Request(profile, candidates) for profile in profiles], corpus)
    for one, batch in zip(alone, together, strict=True):
        assert batch.selected == one.selected
        assert list(batch.scores) == list(one.scores)
        assert batch.considered == one.considered
    assert [len(r.selected) for r in together] == [4, 2, 1, 3, 2, 0, 5, 0]
    # Explanations look their points up densely when that fits in memory, by binary
    # search when it would not: both give the same.
    monkeypatch.setattr("digest.rank.table.GRID_CELLS", 0)
    fresh = Corpus(pool)  # nothing looked up yet
    searched = rank_many([Request(profile, pool[:5]) for profile in profiles], fresh)
    for one, other in zip(together, searched, strict=True):
        assert [(s.paper.uid, s.score, s.matches) for s in other.selected] == [
            (s.paper.uid, s.score, s.matches) for s in one.selected
        ]
        assert [s.matches for s in other.considered] == [s.matches for s in one.considered]


def test_readers_with_different_ratings_ranked_together_get_the_same_as_alone(monkeypatch):
    """A batch measures its candidates against all its readers' rated papers at once;
    each reader must still get exactly its own similarities, with a paper it rated never
    "like itself", whether the batch's similarities are held or computed per reader."""
    pool = papers(
        ("Linear attention kernels", "Linear attention with kernels for long sequences."),
        ("Kernels for linear attention", "Fast kernels make linear attention practical."),
        ("Token pruning", "Pruning visual tokens in vision transformers."),
        ("Pruning visual tokens", "Token pruning keeps the important visual tokens."),
        ("Protein folding", "Structure prediction of proteins with deep networks."),
        ("Folding proteins quickly", "Deep networks predict protein structure fast."),
    )
    corpus = Corpus(pool)
    profile = Profile.build(["attention"])
    requests = [
        Request(profile, pool, [pool[0]], frozenset({pool[0].uid}), [pool[2]]),
        Request(profile, pool, [pool[4], pool[2]], frozenset({pool[4].uid, pool[2].uid})),
        Request(profile, pool, (), frozenset(), [pool[1]]),
        Request(profile, pool),
    ]
    alone = [rank_many([request], corpus)[0] for request in requests]
    monkeypatch.setattr("digest.rank.similar.MATRIX_CELLS", 0)
    per_reader = rank_many(requests, corpus)
    monkeypatch.undo()
    together = rank_many(requests, corpus)
    for one, batch, other in zip(alone, together, per_reader, strict=True):
        assert batch.selected == one.selected == other.selected
        assert list(batch.scores) == list(one.scores) == list(other.scores)
    titles = [s.paper.paper.title for s in together[1].selected]
    assert "Folding proteins quickly" in titles  # like the protein paper it rated up
    rated = {s.paper.paper.title: s for s in together[0].selected}
    # The paper it rated up is not recommended for being like itself...
    assert all(m.field != "rated" for m in rated["Linear attention kernels"].matches)
    # ...but its twin is, and says which rated paper it is like.
    [like] = [m for m in rated["Kernels for linear attention"].matches if m.field == "rated"]
    assert like.term == "Linear attention kernels"


def test_a_model_of_the_ratings_reorders_papers_but_never_chooses_them():
    """A reader of "attention" who rated up papers on long sequences and down papers on
    vision: among today's papers, which the keyword scores alike, those on long
    sequences move up, those on vision down; every one is still delivered, and each says
    how many ratings moved it, by how much (points that add up to its score), and which
    paper it rated up each is closest to."""
    earlier = (
        [
            (f"Attention for long sequences {i}", f"Long context kernels scale to documents {i}.")
            for i in range(4)
        ]
        + [
            (f"Attention in vision backbones {i}", f"Convolution channels reweight pixels {i}.")
            for i in range(4)
        ]
        + [(f"Background paper {i}", f"Weather records of station {i}.") for i in range(30)]
    )
    today = [
        ("Attention for vision, again", "Convolution channels and pixels in backbones."),
        ("Attention over long documents", "Long context kernels for documents and books."),
        ("Attention on photographs", "Pixels of photographs, reweighted by convolution."),
        ("Attention with long context", "Kernels let context grow to whole documents."),
    ]
    pool = papers(*earlier, *today, background=False)
    candidates = pool[len(earlier) :]
    corpus = Corpus(pool)
    profile = Profile.build(["attention"], max_papers=10)
    up, down = pool[0:3], pool[4:7]
    plain = rank_many([Request(profile, candidates)], corpus)[0]
    rated = rank_many(
        [Request(profile, candidates, up, frozenset(p.uid for p in up), down)], corpus
    )[0]

    assert {s.paper.uid for s in rated.selected} == {s.paper.uid for s in plain.selected}
    assert len(rated.selected) == 4
    order = [s.paper.paper.title for s in rated.selected]
    assert set(order[:2]) == {"Attention over long documents", "Attention with long context"}
    for item in rated.selected:
        [taste] = [m for m in item.matches if m.field == "taste"]
        assert taste.count == 6  # learnt from the six ratings
        # Moved up, it names the paper rated up it is most like; moved down, none.
        liked_titles = {p.paper.title for p in up} if taste.points > 0 else {"your ratings"}
        assert taste.term in liked_titles
        assert (taste.points > 0) == ("long" in item.paper.paper.title.lower())
        assert item.score == pytest.approx(sum(m.points for m in item.matches), abs=1e-3)
    # Six ratings weigh a fifth of thirty: twice as many (the same again) weigh more.
    twice = rank_many(
        [Request(profile, candidates, up * 2, frozenset(p.uid for p in up), down * 2)], corpus
    )[0]
    spread = {
        name: max(s.score for s in r.selected) - min(s.score for s in r.selected)
        for name, r in (("six", rated), ("twelve", twice))
    }
    assert spread["twelve"] > spread["six"] > 0
    # At thirty ratings it weighs in full, and the digest's "why" line says so.
    full = rank_many(
        [Request(profile, candidates, up * 5, frozenset(p.uid for p in up), down * 5)], corpus
    )[0]
    best = full.selected[0]
    why = {r.label: r for r in reasons_of(best)}
    # The similarity to a paper rated up and the model name the same paper: one reason,
    # worth both.
    [similar] = [m for m in best.matches if m.field == "rated"]
    [taste] = [m for m in best.matches if m.field == "taste"]
    assert similar.term == taste.term and taste.points > 0
    assert "close to what you rated up" not in why
    title, learnt = why["like papers you rated up"].detail.split("; ")
    assert title.startswith("Attention for long sequences")  # the closest rated up
    assert learnt == "learnt from 30 ratings"
    assert why["like papers you rated up"].points == pytest.approx(similar.points + taste.points)
    # The model fitted is handed back to keep; ranking with it kept scores the same and
    # fits nothing; kept from other ratings, it is fitted again.
    kept = rated.fitted
    assert kept is not None and kept.ratings == 6 and len(kept.words) == len(kept.weights)
    again = rank_many(
        [Request(profile, candidates, up, frozenset(p.uid for p in up), down, kept)], corpus
    )[0]
    assert again.fitted is None and np.array_equal(again.scores, rated.scores)
    other = rank_many(
        [Request(profile, candidates, up, frozenset(p.uid for p in up), down[:2], kept)], corpus
    )[0]
    assert other.fitted is not None and other.fitted.fingerprint != kept.fingerprint
    # Papers rated down alone teach nothing to rank by: no model.
    only_down = rank_many([Request(profile, candidates, (), frozenset(), down)], corpus)[0]
    assert all(m.field != "taste" for s in only_down.selected for m in s.matches)


def test_the_why_line_names_two_rated_papers_apart_and_one_once():
    """The similarity to a paper rated up and the ratings' model each name a paper: two
    reasons when they name two, one worth both when they name the same."""
    from digest.models import Match, Scored

    paper = StoredPaper(1, Paper(title="Attention at length", abstract="Long inputs."), DAY)
    similar = Match("Long attention", "rated", 1, 3.0)

    def why(taste: Match) -> dict[str, tuple[str, float]]:
        item = Scored(paper, 8.0, (Match("attention", "title", 1, 4.0), similar, taste))
        return {r.label: (r.detail, r.points) for r in reasons_of(item)}

    apart = why(Match("Sparse attention", "taste", 12, 1.0))
    assert apart["like papers you rated up"] == ("Long attention", 3.0)
    assert apart["close to what you rated up"] == ("Sparse attention; learnt from 12 ratings", 1.0)
    once = why(Match("Long attention", "taste", 1, 1.0))
    assert "close to what you rated up" not in once
    assert once["like papers you rated up"] == ("Long attention; learnt from 1 rating", 4.0)
    # Moved down, the model is no reason: the similarity alone is said.
    down = why(Match("your ratings", "taste", 12, -1.0))
    assert down["like papers you rated up"] == ("Long attention", 3.0)
    assert "close to what you rated up" not in down


def test_with_semantic_matching_the_ratings_model_learns_what_papers_mean():
    """Papers that share no word with those rated, but mean the same as the ones rated up
    (their embeddings say so), move up when the model sees the embeddings, and only then;
    the delivered set and the points that add up to each score stay as without."""
    earlier = (
        [(f"Attention, kind {i}", f"Sparse routing of tokens {i}.") for i in range(3)]
        + [(f"Attention, sort {i}", f"Pixels of photographs {i}.") for i in range(3)]
        + [(f"Background paper {i}", f"Weather records of station {i}.") for i in range(30)]
    )
    today = [
        ("Attention, first today", "Mixtures pick experts per input."),
        ("Attention, second today", "Colour channels of images."),
        ("Attention, third today", "Experts chosen by a gate."),
        ("Attention, fourth today", "Images reweighted by colour."),
    ]
    pool = papers(*earlier, *today, background=False)
    candidates = pool[len(earlier) :]
    up, down = pool[0:3], pool[3:6]
    # Three directions of meaning: like the papers rated up, like those rated down, neither.
    means_up = {p.uid for p in up} | {candidates[0].uid, candidates[2].uid}
    means_down = {p.uid for p in down} | {candidates[1].uid, candidates[3].uid}

    def meanings(found):
        return np.array(
            [
                [1.0, 0.0, 0.0]
                if p.uid in means_up
                else [0.0, 1.0, 0.0]
                if p.uid in means_down
                else [0.0, 0.0, 1.0]
                for p in found
            ]
        )

    corpus = Corpus(pool)
    profile = Profile.build(["attention"], max_papers=10)
    request = Request(profile, candidates, up * 5, frozenset(p.uid for p in up), down * 5)
    [words_only] = rank_many([request], corpus)
    [with_meaning] = rank_many([request], corpus, meanings=meanings)

    def order(ranking):
        return [s.paper.paper.title for s in ranking.selected]

    assert set(order(with_meaning)) == set(order(words_only)) == {t for t, _ in today}
    assert set(order(with_meaning)[:2]) == {"Attention, first today", "Attention, third today"}
    assert set(order(words_only)[:2]) != set(order(with_meaning)[:2])  # words alone cannot tell
    for item in with_meaning.selected:
        [taste] = [m for m in item.matches if m.field == "taste"]
        assert (taste.points > 0) == (item.paper.uid in means_up)
        assert item.score == pytest.approx(sum(m.points for m in item.matches), abs=1e-3)


# --- query expansion ---------------------------------------------------------------------


def stream_of_papers() -> list[StoredPaper]:
    """A day's worth of papers: some on code generation, some saying the same in other
    words, and a hundred on other topics."""
    on_topic = [
        (f"Code generation with language models, part {i}",
         "We study code generation: the model writes a program, unit tests check it, and "
         "the repository grows.")
        for i in range(8)
    ]  # fmt: skip
    other_words = [
        ("Writing programs from unit tests", "A program passes unit tests in a repository."),
        ("Repository-level program repair", "Unit tests guide each program in the repository."),
    ]
    elsewhere = [
        (f"Image segmentation study {i}", f"Convolutions label pixels of photographs, case {i}.")
        for i in range(100)
    ]
    return papers(*on_topic, *other_words, *elsewhere, background=False)


def test_interests_learn_related_words_from_their_best_papers():
    pool = stream_of_papers()
    profile = Profile.build(["code generation"], max_papers=50)
    ranking = rank(profile, Corpus(pool), pool)
    titles = [s.paper.paper.title for s in ranking.selected]
    assert len(titles) == 10  # the 8 on the topic, and the 2 that say it in other words
    assert set(titles[8:]) == {
        "Writing programs from unit tests",
        "Repository-level program repair",
    }
    found = ranking.selected[8]
    [related] = [m for m in found.matches if m.kind == "related" and m.field == "title"]
    assert set(related.via.split()) == {"program", "unit", "tests"}
    assert found.score == round(sum(m.points for m in found.matches), 4)
    view = paper_view(1, found)
    assert any(r.label.startswith("related: ") for r in view.reasons)
    assert not set(related.via.split()) & set(view.terms)  # named, not highlighted
    # Without expansion, those two papers match no keyword and are not in the digest.
    plain = rank(profile, Corpus(pool), pool, weights=Weights(related=0))
    assert len(plain.selected) == 8
    # Ranked with another reader, and explained later: the same words, the same points.
    together = rank_many(
        [Request(profile, pool), Request(Profile.build(["segmentation"]), pool)], Corpus(pool)
    )[0]
    assert together.selected == ranking.selected
    later = {s.paper.uid: s for s in together.considered}
    assert all(s.matches == later[s.paper.uid].matches for s in ranking.considered[:5])
