"""The text captures of Hugging Face papers pages: the real layouts and their variations."""

from __future__ import annotations

from datetime import date

import pytest

from digest.errors import ParseError
from digest.sources.parse.page_text import parse_page_text

TODAY = date(2026, 11, 22)
ABSTRACT = (
    "We propose a method for a problem that matters. Our approach is simple and general, "
    "and it works across many settings that earlier methods could not handle well. "
    "Experiments on five benchmarks show consistent gains over strong baselines."
)


def parse(text: str):
    return parse_page_text(text, "capture.txt", today=TODAY)


def test_compact_layout(seeds):
    listing = parse(seeds[0].read_text(encoding="utf-8"))
    assert len(listing.papers) == 119
    first, last = listing.papers[0], listing.papers[-1]
    assert first.title.startswith("From Relational Pooling to Subgraph GNNs")
    assert not first.title.startswith("Subscribe")
    assert first.abstract.startswith("Relational pooling is a framework")
    assert last.title.startswith("Leveraging Reinforcement Learning and Large Language Models")
    assert all(p.abstract for p in listing.papers)
    assert listing.warnings == []


def test_blocks_layout(seeds):
    listing = parse(seeds[1].read_text(encoding="utf-8"))
    assert len(listing.papers) == 87
    assert listing.listed_on == date(2026, 3, 14)  # "Mar 14", no year: this year
    assert (
        listing.papers[0].title
        == "Sparse Finetuning for Inference Acceleration of Large Language Models"
    )
    assert listing.papers[-1].title.startswith("ComPEFT")
    assert all(len(p.abstract) > 300 for p in listing.papers)


def test_blocks_with_metadata_layout(seeds):
    listing = parse(seeds[2].read_text(encoding="utf-8"))
    assert len(listing.papers) == 38
    assert listing.listed_on == date(2025, 12, 8)  # "Dec 8" is after today's date: last year
    by_title = {p.title: p for p in listing.papers}
    lingen = listing.papers[0]
    assert lingen.title.startswith("LinGen:")
    assert (lingen.author_count, lingen.published, lingen.upvotes) == (13, date(2024, 12, 12), 4)
    mvar = by_title[
        "M-VAR: Decoupled Scale-wise Autoregressive Modeling for High-Quality Image Generation"
    ]
    assert (mvar.author_count, mvar.published, mvar.upvotes) == (6, date(2024, 11, 15), None)
    lit = next(p for p in listing.papers if p.title.startswith("LiT:"))
    assert lit.published == date(2026, 1, 22)  # "Jan 22": this year
    no_meta = next(p for p in listing.papers if p.title.startswith("Decoder-Hybrid-Decoder"))
    assert (no_meta.author_count, no_meta.published) == (None, None)
    radial = next(p for p in listing.papers if p.title.startswith("Radial Attention"))
    assert (
        radial.title_raw
        == r"Radial Attention: $O(n\log n)$ Sparse Attention with Energy Decay for Long Video Generation"
    )
    assert (
        radial.title
        == "Radial Attention: O(n log n) Sparse Attention with Energy Decay for Long Video Generation"
    )
    assert sum(1 for p in listing.papers if p.author_count) == 34


def test_variations_users_will_feed_it():
    text = "\r\n".join(
        [
            "new",
            "",
            "Get trending papers in your email inbox!",
            "",
            "Subscribe",
            "",
            "Trending Papers",  # a header line the real captures do not have
            "",
            "Sort by upvotes",  # and one we have never seen at all
            "",
            "Oct 9",
            "",
            r"Colons: and $\alpha$-LaTeX in a Title",
            "",
            ABSTRACT,
            "",
            "  • 1 author",
            "·",
            "Oct 9 12",
            "",
            "A Paper Without Metadata",
            "",
            ABSTRACT,
            "",
            "A Paper Without An Abstract",
            "",
            "  • 3 authors",
            "·",
            "Sep 30, 2025",
            "",
            "The Last Paper",
            "",
            ABSTRACT,  # and no final newline
        ]
    )
    listing = parse(text)
    assert [p.title for p in listing.papers] == [
        "Colons: and α-LaTeX in a Title",
        "A Paper Without Metadata",
        "A Paper Without An Abstract",
        "The Last Paper",
    ]
    first, _, no_abstract, last = listing.papers
    assert (first.author_count, first.published, first.upvotes) == (1, date(2026, 10, 9), 12)
    assert no_abstract.abstract == "" and no_abstract.author_count == 3
    assert no_abstract.published == date(2025, 9, 30)
    assert last.abstract == ABSTRACT


def test_compact_layout_without_the_glued_subscribe_and_with_a_final_newline():
    lines = [
        "Get trending papers in your email inbox once a day!",
        "First Title",
        ABSTRACT,
        "Second Title",
        ABSTRACT,
    ]
    listing = parse("\n".join(lines) + "\n")
    assert [p.title for p in listing.papers] == ["First Title", "Second Title"]


def test_compact_layout_with_a_missing_abstract_keeps_titles_aligned():
    lines = [
        "Subscribe" + "First Title",
        ABSTRACT,
        "Title Without Abstract",
        "Third Title",
        ABSTRACT,
    ]
    listing = parse("\n".join(lines))
    assert [(p.title, bool(p.abstract)) for p in listing.papers] == [
        ("First Title", True),
        ("Title Without Abstract", False),
        ("Third Title", True),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "new\n\nSubscribe\n\nMar 14\n", "just a short note"])
def test_text_without_papers_is_an_error_naming_the_file(text):
    with pytest.raises(ParseError, match=r"^capture\.txt: "):
        parse(text)
