"""Ratings: what a reader rated feeds its ranking (real store, real ranking), and
`digest feedback` records, clears and lists them for config and store readers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import day
from digest.cli import main
from digest.config import load_config
from digest.explain import explain
from digest.pipeline import open_store, run_once
from digest.previews import preview

NOW = datetime(2026, 3, 13, 7, 30, tzinfo=UTC)

# Read on day 0; the reader rates them afterwards.
SCANS = (
    "2603.00001",
    "Selective state spaces for long sequences",
    "Selective scan recurrences with input-dependent gates model long sequences of tokens.",
)
MOLECULES = (
    "2603.00002",
    "Graph networks for molecule property prediction",
    "Message passing over atoms and bonds predicts molecule properties and toxicity.",
)
# New on day 1. Without ratings the first ranks above the second (more keyword points).
STRONG = (
    "2603.10001",
    "Transformer transformers for molecule graphs",
    "A transformer over atoms and bonds with message passing predicts molecule toxicity.",
)
SIMILAR = (
    "2603.10002",
    "Transformer with selective scans",
    "Selective scan recurrences with input-dependent gates for long sequences of tokens.",
)
READER = """
[[subscribers]]
name = "alice"
email = "alice@example.org"
keywords = ["transformer"]
channels = ["email", "feed"]
"""


def listing(*papers: tuple[str, str, str], on: str) -> str:
    """An HF daily_papers response (it carries arXiv ids) of these papers."""
    return json.dumps(
        [
            {
                "paper": {
                    "id": arxiv_id,
                    "title": title,
                    "summary": abstract,
                    "authors": [{"name": "Ada Lovelace", "hidden": False}],
                    "publishedAt": f"{on}T00:00:00.000Z",
                    "submittedOnDailyAt": f"{on}T00:00:00.000Z",
                    "upvotes": 1,
                },
                "numComments": 0,
            }
            for arxiv_id, title, abstract in papers
        ]
    )


@pytest.fixture
def rated_config(make_config) -> Path:
    """A reader that got SCANS and MOLECULES on day 0; STRONG and SIMILAR wait for day 1."""
    path = make_config(subscribers=READER)
    inbox = path.parent / "inbox"
    (inbox / "day0.json").write_text(listing(SCANS, MOLECULES, on="2026-03-13"))
    assert run_once(load_config(path), today=day(0), clock=lambda: NOW).ok
    (inbox / "day1.json").write_text(listing(STRONG, SIMILAR, on="2026-03-14"))
    return path


def order_tomorrow(path: Path) -> list[str]:
    digest, _html = preview(load_config(path), "alice", today=day(1), clock=lambda: NOW)
    return [item.paper.paper.arxiv_id for item in digest.papers]


def vote(path: Path, ref: str, how: str) -> None:
    result = CliRunner().invoke(main, ["feedback", "--config", str(path), "alice", ref, how])
    assert result.exit_code == 0, result.output


def test_rating_a_paper_up_ranks_a_similar_new_paper_above_one_it_ranked_below(rated_config):
    assert order_tomorrow(rated_config) == [STRONG[0], SIMILAR[0]]
    vote(rated_config, SCANS[0], "up")
    assert order_tomorrow(rated_config) == [SIMILAR[0], STRONG[0]]

    # The digest says why, in the email's HTML and text.
    report = run_once(load_config(rated_config), today=day(1), clock=lambda: NOW)
    assert report.ok
    [first, _second] = report.subscribers["alice"].papers
    assert first["id"] == SIMILAR[0]
    assert [m.field for m in first["matched"]].count("rated") == 1
    # The model of the reader's ratings learnt from its one vote (day 0's other paper is
    # its weak negative), and says so.
    [taste] = [m for m in first["matched"] if m.field == "taste"]
    assert taste.count == 1 and taste.points > 0
    assert taste.term == SCANS[1]  # it names the paper rated up
    # `digest explain` scores it again among its day's papers, as the run did.
    found = explain(load_config(rated_config), "alice", SIMILAR[0], day(1))
    assert found.eligible_now and found.now.score == pytest.approx(first["score"], abs=1e-3)
    assert [m.field for m in found.now.matches].count("taste") == 1
    eml = next((rated_config.parent / "out" / "email" / "alice").glob("2026-03-14*.eml"))
    text = eml.read_text()
    assert "like papers you rated up" in text


def test_clearing_the_vote_gives_the_ranking_back(rated_config):
    vote(rated_config, SCANS[0], "up")
    vote(rated_config, SCANS[0], "clear")
    assert order_tomorrow(rated_config) == [STRONG[0], SIMILAR[0]]


def test_a_paper_rated_down_lowers_similar_papers_but_keeps_them(rated_config):
    vote(rated_config, MOLECULES[0], "down")
    # STRONG resembles the molecule paper: it now ranks below, and is still offered.
    assert order_tomorrow(rated_config) == [SIMILAR[0], STRONG[0]]
    config = load_config(rated_config)
    with open_store(config) as store:
        [rating] = store.ratings_of("alice")
    assert (rating.vote, rating.source, rating.arxiv_id) == (-1, "cli", MOLECULES[0])


def cli(path: Path, *args: str):
    return CliRunner().invoke(main, [*args[:1], "--config", str(path), *args[1:]])


@pytest.mark.parametrize(
    "ref",
    [
        SCANS[0],
        f"{SCANS[0]}v3",
        f"arXiv:{SCANS[0]}",
        f"https://arxiv.org/abs/{SCANS[0]}v1",
        f"https://arxiv.org/pdf/{SCANS[0]}.pdf",
        SCANS[1],
        SCANS[1].upper(),
    ],
)
def test_a_paper_is_found_by_any_spelling_of_its_id_or_by_its_title(rated_config, ref):
    result = cli(rated_config, "feedback", "alice@EXAMPLE.org", ref, "up")
    assert result.exit_code == 0, result.output
    assert result.output == f"alice: rated up {SCANS[0]} ({SCANS[1]})\n"
    with open_store(load_config(rated_config)) as store:
        [rating] = store.ratings_of("alice")
    assert (rating.arxiv_id, rating.vote, rating.source) == (SCANS[0], 1, "cli")


def test_the_last_vote_wins_and_list_prints_the_ratings_as_text_and_json(rated_config):
    assert cli(rated_config, "feedback", "alice", SCANS[0], "up").exit_code == 0
    assert cli(rated_config, "feedback", "alice", MOLECULES[0], "up").exit_code == 0
    assert cli(rated_config, "feedback", "alice", MOLECULES[0], "down").exit_code == 0
    listed = cli(rated_config, "feedback", "alice", "--list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 3 and lines[-1] == "2 ratings by alice"
    assert {line.split()[0] for line in lines[:2]} == {"up", "down"}
    assert any(MOLECULES[0] in line and line.startswith("down") for line in lines)
    as_json = json.loads(cli(rated_config, "feedback", "alice", "--list", "--json").output)
    assert as_json["subscriber"] == "alice"
    votes = {r["arxiv_id"]: (r["vote"], r["source"], r["title"]) for r in as_json["ratings"]}
    assert votes == {SCANS[0]: ("up", "cli", SCANS[1]), MOLECULES[0]: ("down", "cli", MOLECULES[1])}
    cleared = cli(rated_config, "feedback", "alice", MOLECULES[0], "clear")
    assert cleared.output == f"alice: cleared the rating of {MOLECULES[0]} ({MOLECULES[1]})\n"
    again = json.loads(cli(rated_config, "feedback", "alice", "--list", "--json").output)
    assert [r["arxiv_id"] for r in again["ratings"]] == [SCANS[0]]


def test_a_store_reader_rates_by_name_or_address(rated_config):
    added = CliRunner().invoke(
        main,
        ["subscribers", "add", "--config", str(rated_config), "bob@example.org", "--name", "bob"],
    )
    assert added.exit_code == 0, added.output
    assert cli(rated_config, "feedback", "BOB@example.org", SCANS[0], "down").exit_code == 0
    listed = json.loads(cli(rated_config, "feedback", "bob", "--list", "--json").output)
    assert [(r["arxiv_id"], r["vote"]) for r in listed["ratings"]] == [(SCANS[0], "down")]
    # Each reader's votes are its own.
    assert (
        json.loads(cli(rated_config, "feedback", "alice", "--list", "--json").output)["ratings"]
        == []
    )


def test_words_of_one_title_rate_that_paper_and_words_of_several_rate_none(rated_config):
    one = cli(rated_config, "feedback", "alice", "MOLECULE property", "up")
    assert one.exit_code == 0, one.output
    several = cli(rated_config, "feedback", "alice", "for", "down")
    assert several.exit_code == 1
    assert "'for' is in the titles of several papers" in several.output
    assert SCANS[1] in several.output and MOLECULES[1] in several.output
    with open_store(load_config(rated_config)) as store:
        assert [(r.arxiv_id, r.vote) for r in store.ratings_of("alice")] == [(MOLECULES[0], 1)]


def test_an_unknown_reader_or_paper_is_a_clear_error_naming_it(rated_config):
    reader = cli(rated_config, "feedback", "nobody@example.org", SCANS[0], "up")
    assert reader.exit_code == 2
    assert "no reader 'nobody@example.org' in" in reader.output
    assert "digest subscribers list" in reader.output
    paper = cli(rated_config, "feedback", "alice", "arXiv:2601.99999v2", "up")
    assert paper.exit_code == 1
    assert "no paper with arXiv id 2601.99999 in the store" in paper.output
    assert "only papers a run has read can be rated" in paper.output
    title = cli(rated_config, "feedback", "alice", "A paper nobody wrote", "up")
    assert "no paper titled 'A paper nobody wrote'" in title.output
    missing = cli(rated_config, "feedback", "alice", SCANS[0])
    assert missing.exit_code != 0 and "up, down or clear" in missing.output
    bad = cli(rated_config, "feedback", "alice", SCANS[0], "sideways")
    assert bad.exit_code == 2 and "sideways" in bad.output
    with open_store(load_config(rated_config)) as store:
        assert store.ratings_of("alice") == []


def test_a_reader_s_model_is_fitted_when_its_ratings_change_and_kept_until_then(rated_config):
    """A run fits the model of a reader's ratings and keeps it in the store; the next
    run, with no new rating, ranks with the kept one (on a day whose corpus has other
    words) and `digest explain` agrees with it; a new rating makes the next run fit it
    again."""
    from sqlalchemy import select

    from digest.store.schema import tastes

    inbox = rated_config.parent / "inbox"

    def run_on(n: int, *papers: tuple[str, str, str]) -> dict:
        if papers:
            (inbox / f"day{n}.json").write_text(listing(*papers, on=f"2026-03-{13 + n}"))
        now = NOW.replace(day=13 + n)
        report = run_once(load_config(rated_config), today=day(n), clock=lambda: now)
        assert report.ok
        return report.subscribers["alice"].papers

    def kept() -> tuple[str, datetime]:
        with open_store(load_config(rated_config)) as store:
            [row] = store.conn.execute(select(tastes.c.fingerprint, tastes.c.fitted_at)).all()
        return row.fingerprint, row.fitted_at

    vote(rated_config, SCANS[0], "up")
    run_on(1)
    fitted, at = kept()
    assert at == NOW.replace(day=14)
    later = [
        ("2603.20001", "A transformer for selective scans", "Selective scan gates for tokens."),
        ("2603.20002", "A transformer for molecules", "Atoms and bonds with message passing."),
    ]
    papers = run_on(2, *later)
    assert kept() == (fitted, at)  # not fitted again: the same ratings
    moved = {p["id"]: [m for m in p["matched"] if m.field == "taste"] for p in papers}
    [[up], [down]] = moved["2603.20001"], moved["2603.20002"]
    assert up.points > 0 > down.points  # the kept model still knows what the reader likes
    found = explain(load_config(rated_config), "alice", "2603.20001", day(2))
    [ran] = [p for p in papers if p["id"] == "2603.20001"]
    assert found.now.score == pytest.approx(ran["score"], abs=1e-3)

    vote(rated_config, MOLECULES[0], "down")
    run_on(3, ("2603.30001", "Transformer scans", "Selective scans of long sequences."),
           ("2603.30002", "Transformer graphs", "Message passing over molecule graphs."))  # fmt: skip
    refitted, at = kept()
    assert refitted != fitted and at == NOW.replace(day=16)


def test_a_model_that_cannot_be_kept_costs_no_digest(rated_config, monkeypatch, caplog):
    """Keeping a fitted model is a cache: when the store refuses the write, the run
    delivers as it would have and says the model will be fitted again."""
    from digest.errors import StoreError
    from digest.store import Store

    def refuse(self, models, now):
        raise StoreError("database is locked")

    monkeypatch.setattr(Store, "keep_tastes", refuse)
    caplog.set_level("WARNING", logger="digest")
    vote(rated_config, SCANS[0], "up")
    monkeypatch.setattr(logging.getLogger("digest"), "propagate", True)  # the CLI's handler
    report = run_once(load_config(rated_config), today=day(1), clock=lambda: NOW)
    assert report.ok
    papers = report.subscribers["alice"].papers
    assert [p["id"] for p in papers] == [SIMILAR[0], STRONG[0]]
    assert any(m.field == "taste" for m in papers[0]["matched"])
    assert "could not keep 1 models of ratings" in caplog.text
