"""`digest explain` agrees with what the digest showed, point for point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from conftest import day
from digest.config import load_config
from digest.explain import describe, explain
from digest.pipeline import open_store, run_once
from digest.render.context import MINOR_SHARE

REPO = Path(__file__).resolve().parents[1]

PROFILE = """
[[subscribers]]
name = "alice"
email = "alice@example.org"
keywords = ["linear attention", "state space model", "mamba^2", "video generation"]
exclude = ["survey"]
channels = ["page"]
"""


class _Whys(HTMLParser):
    """The "Why:" line of each paper card, by the card's data-ref."""

    def __init__(self) -> None:
        super().__init__()
        self.by_ref: dict[str, str] = {}
        self._ref: str | None = None
        self._in_why = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "div" and values.get("class") == "paper":
            self._ref = values.get("data-ref")
        if tag == "p" and values.get("class") == "why":
            self._in_why = True

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_why = False

    def handle_data(self, data):
        if self._in_why and self._ref:
            self.by_ref[self._ref] = self.by_ref.get(self._ref, "") + data


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], capture_output=True, text=True, timeout=120
    )


def test_explain_reproduces_the_breakdown_the_digest_showed(make_config, seeds, clock):
    config = make_config(subscribers=PROFILE)
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    report = run_once(load_config(config), today=day(0), clock=clock)
    chosen = report.subscribers["alice"].papers
    assert len(chosen) >= 5

    parser = _Whys()
    parser.feed((config.parent / "out" / "pages" / "alice" / "2026-03-13.html").read_text())
    for position, paper in enumerate(chosen[:5]):
        result = cli(
            "explain",
            "--config",
            str(config),
            "-s",
            "alice",
            "-p",
            paper["id"],
            "--date",
            "2026-03-13",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        explained = json.loads(result.stdout)
        recorded = explained["recorded"]
        assert recorded["status"] == "selected" and recorded["position"] == position
        assert recorded["score"] == paper["score"]
        assert [(m["term"], m["field"], m["points"]) for m in recorded["matches"]] == [
            (m.term, m.field, m.points) for m in paper["matched"]
        ]
        # Scored again now, with the same background: the very same breakdown.
        assert explained["now"]["score"] == paper["score"]
        # Every reason the page gives is one the breakdown scored: a keyword, or the
        # title of the paper a signal names (the page shortens a long one).
        shown = parser.by_ref[paper["id"]]
        for match in recorded["matches"]:
            if match["points"] >= 0.1 * paper["score"]:
                assert match["term"][:80] in shown, (match, shown)

    text = cli(
        "explain",
        "--config",
        str(config),
        "-s",
        "alice",
        "-p",
        chosen[0]["id"],
        "--date",
        "2026-03-13",
    )
    assert "Chosen for the digest of 2026-03-13, #1 of" in text.stdout
    assert "the same breakdown" in text.stdout


def test_explain_says_when_a_paper_was_not_chosen_and_when_it_is_unknown(make_config, seeds, clock):
    config = make_config(subscribers=PROFILE)
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    run_once(load_config(config), today=day(0), clock=clock)
    considered = cli(
        "explain",
        "--config",
        str(config),
        "-s",
        "alice",
        "-p",
        "On the Provable Advantage of Unsupervised Pretraining",
        "--date",
        "2026-03-13",
    )
    assert considered.returncode == 0, considered.stderr
    assert "Considered for the digest of 2026-03-13 and not chosen." in considered.stdout
    assert (
        "Today it is left out: no keyword's phrase, words near each other or uncommon word "
        "matches." in considered.stdout
    )
    missing = cli("explain", "--config", str(config), "-s", "alice", "-p", "2999.99999")
    assert missing.returncode != 0
    assert "no paper with arXiv id 2999.99999 in the store" in missing.stderr
    # Words of one title name that paper; words of several titles name none of them.
    words = cli("explain", "--config", str(config), "-s", "alice", "-p", "provable ADVANTAGE")
    assert words.returncode == 0, words.stderr
    assert "Paper:  On the Provable Advantage of Unsupervised Pretraining" in words.stdout
    several = cli("explain", "--config", str(config), "-s", "alice", "-p", "learning")
    assert several.returncode != 0 and not several.stdout
    assert "'learning' is in the titles of several papers" in several.stderr
    assert "give more of the title" in several.stderr


def test_explain_says_a_matching_paper_was_left_out_by_max_papers(make_config, seeds, clock):
    config = make_config(subscribers=PROFILE.replace('channels = ["page"]',
                                                     'channels = ["page"]\nmax_papers = 3'))  # fmt: skip
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    loaded = load_config(config)
    run_once(loaded, today=day(0), clock=clock)
    with open_store(loaded, dry_run=True) as store:
        titles = [p.paper.title for p in store.papers_after(0, until=day(0))]
    found = [explain(loaded, "alice", title, day(0)) for title in titles]
    places = sorted(f.place_now for f in found if f.place_now is not None)
    assert places[:4] == [1, 2, 3, 4] and all(f.max_papers == 3 for f in found)
    fourth = next(f for f in found if f.place_now == 4)
    assert fourth.recorded is not None and fourth.recorded.status == "considered"
    text = cli("explain", "--config", str(config), "-s", "alice", "-p", fourth.paper.paper.ref,
               "--date", "2026-03-13")  # fmt: skip
    assert text.returncode == 0, text.stderr
    left_out = (
        f"Today: #4 of the {fourth.matching_now} papers of its day that match; the digest "
        "keeps the best 3 (max_papers)."
    )
    assert left_out in text.stdout
    first = next(f for f in found if f.place_now == 1)
    assert first.recorded is not None and first.recorded.position == 0


def test_explain_and_the_page_name_related_words_as_related(make_config, seeds, clock):
    config = make_config(
        subscribers=PROFILE.replace(
            '["linear attention", "state space model", "mamba^2", "video generation"]',
            '["code generation"]',
        )
    )
    shutil.copy(seeds[0], config.parent / "inbox" / "capture.txt")  # enough to expand
    report = run_once(load_config(config), today=day(0), clock=clock)
    chosen = report.subscribers["alice"].papers
    related = [p for p in chosen if any(m.kind == "related" for m in p["matched"])]
    assert related, "no paper of the digest scored a related word"
    paper = related[0]
    parser = _Whys()
    parser.feed((config.parent / "out" / "pages" / "alice" / "2026-03-13.html").read_text())
    text = cli(
        "explain", "--config", str(config), "-s", "alice", "-p", paper["id"], "--date", "2026-03-13"
    )
    assert text.returncode == 0, text.stderr
    words = next(m.via for m in paper["matched"] if m.kind == "related").split()
    assert f"related: {words[0]}" in text.stdout
    # On the page, the related words are one reason (shown when they count enough).
    points = sum(m.points for m in paper["matched"] if m.kind == "related")
    assert ("related: " in parser.by_ref[paper["id"]]) == (points >= MINOR_SHARE * paper["score"])
    assert any("related: " in parser.by_ref[p["id"]] for p in related if p["id"] in parser.by_ref)


READERS_WITH_RULES = """
[[subscribers]]
name = "alice"
email = "alice@example.org"
keywords = ["linear attention", "state space model"]
exclude = ["survey", "diffusion"]
channels = ["page"]

[[subscribers]]
name = "bob"
email = "bob@example.org"
keywords = ["linear attention"]
require = ["video", "image"]
channels = ["page"]
"""


def test_explain_names_the_excluded_words_a_paper_holds_and_the_required_ones_it_lacks(
    make_config, clock
):
    config = make_config(subscribers=READERS_WITH_RULES)
    for listing in (REPO / "examples" / "inbox").iterdir():
        shutil.copy(listing, config.parent / "inbox" / listing.name)
    loaded = load_config(config)
    run_once(loaded, today=day(0), clock=clock)
    survey = explain(loaded, "alice", "A Survey of Efficient Attention Mechanisms", day(0))
    assert survey.place_now is None and survey.left_out_by == ("survey",)
    text = cli("explain", "--config", str(config), "-s", "alice", "-p",
               "A Survey of Efficient Attention Mechanisms", "--date", "2026-03-13")  # fmt: skip
    assert "Today it is left out: an excluded word matches (“survey”)." in text.stdout
    gated = "Gated Linear Attention with Learned Forgetting for Long-Context Language Models"
    lacking = explain(loaded, "bob", gated, day(0))
    assert lacking.place_now is None and lacking.left_out_by == ("video", "image")
    assert describe(lacking)[-1] == (
        "Today it is left out: none of the required words is in it (“video”, “image”)."
    )
    video = explain(loaded, "bob", "Text-to-Video Generation with Linear Diffusion Transformers",
                    day(0))  # fmt: skip
    assert video.place_now is not None and video.left_out_by == ()
