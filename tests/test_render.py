"""Rendering: golden files for every output, email structure, size limits, feeds read back.

Golden files live in tests/golden; after an intended change, regenerate them with
``DIGEST_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import email
import email.policy
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import feedparser
import markdown
import nh3
import pytest

from digest.config import EmailSettings
from digest.models import Digest, FeedItem, Match, Paper, Scored, StoredPaper
from digest.render.context import digest_view
from digest.render.email import (
    MAX_HTML_BYTES,
    build_message,
    html_size,
    parts_that_fit,
    render_html,
    render_text,
)
from digest.render.environment import make_environment, markdown_escape
from digest.render.feeds import build_feeds
from digest.render.pages import IndexEntry, render_index, render_markdown, render_page

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 3, 13, 6, 30, tzinfo=UTC)
ENV = make_environment(None)


def sample_digest() -> Digest:
    papers = [
        Paper.from_source(
            title=r"Linear Attention for $O(n)$ Long-Context Models",
            abstract="We make linear attention fast. A state space model view explains why.",
            arxiv_id="2603.01234",
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            categories=("cs.LG", "cs.CL"),
            published=date(2026, 3, 12),
            upvotes=42,
            github_repo="https://github.com/example/linear",
            github_stars=1200,
            url="https://huggingface.co/papers/2603.01234",
        ),
        Paper.from_source(
            title="Mamba Layers <Without> Tears",
            abstract="A short abstract & a hostile <b>tag</b>.",
            author_count=3,
        ),
    ]
    scored = [
        Scored(
            StoredPaper(1, papers[0], date(2026, 3, 13)),
            7.5,
            (
                Match("linear attention", "title", 1, 4.24),
                Match("linear attention", "abstract", 1, 1.41),
                Match("attention", "abstract", 2, 0.6, "word"),
                Match("state space model", "abstract", 1, 1.73, "near"),
            ),
            "Efficient attention",
        ),
        Scored(
            StoredPaper(2, papers[1], date(2026, 3, 13)),
            4.24,
            (
                Match("mamba", "title", 1, 3.0),
                Match("Ada Lovelace", "authors", 1, 3.0, "signal"),
                Match("A Paper You Liked About Selective Scans", "liked", 1, 1.2, "signal"),
            ),
            "State space models",
        ),
    ]
    return Digest(
        subscriber="alice",
        date=date(2026, 3, 13),
        seq=1,
        papers=tuple(scored),
        candidates=57,
        digest_id=1,
    )


def check_golden(name: str, content: str | bytes) -> None:
    path = GOLDEN / name
    data = content.encode() if isinstance(content, str) else content
    if os.environ.get("DIGEST_UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}; run with DIGEST_UPDATE_GOLDEN=1"
    assert data.decode() == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def view(**kwargs):
    return digest_view(
        sample_digest(),
        generated_at=NOW,
        base_url=kwargs.get("base_url", "https://digest.example.org"),
    )


def test_golden_email_html_and_text():
    check_golden("email.html", render_html(ENV, view()))
    check_golden("email.txt", render_text(ENV, view()))


def test_golden_page_index_and_markdown():
    check_golden("page.html", render_page(ENV, view()))
    check_golden("digest.md", render_markdown(ENV, view()))
    entries = [IndexEntry(date(2026, 3, 13), 2), IndexEntry(date(2026, 3, 13), 1)]
    check_golden(
        "index.html", render_index(ENV, "alice", entries, [("RSS feed", "../../feeds/alice.rss")])
    )


def test_golden_feeds_and_they_parse_cleanly():
    digest = sample_digest()
    items = [FeedItem(s, digest.date, NOW) for s in digest.papers]
    rss, atom = build_feeds("alice", items, now=NOW, base_url="https://digest.example.org")
    check_golden("feed.rss", rss)
    check_golden("feed.atom", atom)
    assert (rss, atom) == build_feeds(
        "alice", items, now=NOW, base_url="https://digest.example.org"
    )
    for data in (rss, atom):
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0
        assert [e.title for e in parsed.entries] == [
            "Linear Attention for O(n) Long-Context Models",
            "Mamba Layers <Without> Tears",
        ]
        assert parsed.entries[0].link == "https://arxiv.org/abs/2603.01234"
        assert "Why: linear attention (title, abstract)" in parsed.entries[0].summary


def test_email_message_structure_and_headers():
    message = build_message(ENV, view(), settings=EmailSettings(), to="alice@example.org", now=NOW)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parsed.iter_parts())
    assert parsed["To"] == "alice@example.org"
    assert parsed["Subject"] == "Paper digest for 2026-03-13: 2 new"
    assert parsed["Date"] == "Fri, 13 Mar 2026 06:30:00 +0000"
    again = build_message(ENV, view(), settings=EmailSettings(), to="alice@example.org", now=NOW)
    assert parsed["Message-ID"] == again["Message-ID"]
    assert not parsed.defects and not any(p.defects for p in parsed.iter_parts())
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == message.text
    assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == message.html
    assert parsed["Message-ID"].endswith("@localhost>")
    html = parsed.get_body(("html",)).get_content()
    assert 'style="' in html  # CSS inlined for clients that drop <style>
    assert "prefers-color-scheme: dark" in html  # dark mode kept as a media query
    assert "Linear Attention</mark>" in html and "linear attention</mark>" in html


def test_every_paper_links_somewhere():
    digest_html = render_html(ENV, view())
    assert 'href="https://arxiv.org/abs/2603.01234"' in digest_html
    assert "https://arxiv.org/search/?query=Mamba+Layers" in digest_html  # no id: title search


def test_a_huge_digest_is_cut_into_emails_that_each_fit_and_together_show_every_paper():
    base = sample_digest().papers[0]
    many = tuple(
        Scored(
            StoredPaper(
                i,
                Paper(
                    title=f"Paper number {i} " + "word " * 12,
                    abstract="An abstract sentence. " * 40,
                ),
                base.paper.first_seen,
            ),
            1.0,
        )
        for i in range(300)
    )
    digest = Digest("alice", date(2026, 3, 13), 1, many, candidates=300, digest_id=9)

    def part_view(start: int, end: int):
        return digest_view(replace(digest, papers=many[start:end]), generated_at=NOW)

    sizes = parts_that_fit(len(many), lambda a, b: html_size(render_html(ENV, part_view(a, b))))
    assert sum(sizes) == 300 and len(sizes) > 1
    start = 0
    for size in sizes:
        message = build_message(
            ENV, part_view(start, start + size), settings=EmailSettings(), to="a@b.org", now=NOW
        )
        html = message.message().get_body(("html",)).get_content()
        text = message.message().get_body(("plain",)).get_content()
        assert len(html.encode()) <= MAX_HTML_BYTES
        assert html.count('class="paper"') == size  # each part shows all of its papers
        assert "did not fit" not in html and "did not fit" not in text
        assert f"Paper number {start + size - 1} " in text  # the text part is never cut
        start += size
    # A part is as full as it can be: one more paper would not have fitted.
    assert html_size(render_html(ENV, part_view(0, sizes[0] + 1))) > MAX_HTML_BYTES


def test_one_paper_too_large_for_any_email_is_an_email_of_its_own():
    papers = [30, 60, 10, 30, 95, 50]  # each paper's size; an email holds at most 100

    def size(start: int, end: int) -> int:
        return sum(papers[start:end])

    assert parts_that_fit(6, size, limit=100) == [3, 1, 1, 1]  # 100, 30, 95, 50
    assert parts_that_fit(3, lambda a, b: 1000 * (b - a), limit=100) == [1, 1, 1]
    assert parts_that_fit(3, size, limit=100) == [3]  # 100 fits
    assert parts_that_fit(0, size) == []
    # The parts are as large as the limit allows, whatever the first guess was.
    uneven = [5] * 10 + [80] + [5] * 10
    parts = parts_that_fit(21, lambda a, b: sum(uneven[a:b]), limit=100)
    assert sum(parts) == 21
    bounds = [sum(parts[:i]) for i in range(len(parts) + 1)]
    for a, b in pairwise(bounds):
        assert sum(uneven[a:b]) <= 100
        assert b == 21 or sum(uneven[a : b + 1]) > 100


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "# Heading",
        "**bold** _it_",
        "a | b ~~c~~",
        "1. list",
    ],
)
def test_markdown_escaping_renders_as_the_same_text(hostile):
    rendered = markdown.markdown(f"## A title: {markdown_escape(hostile)}")
    clean = nh3.clean(rendered, tags={"h2"})
    assert clean == rendered  # nothing a sanitiser would have to remove
    assert (
        nh3.clean(rendered, tags=set())
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        == f"A title: {hostile}"
    )


def test_the_why_line_gives_closeness_to_other_matches_last_with_a_short_title():
    """What a paper's closest candidates lend (score regularisation) can outweigh its own
    keyword, but it says where the paper ranks, not what it is about: the reader's
    keyword comes first and the lender's title is cut short."""
    lender = "A Survey of Linear Attention, Kernel Feature Maps and Every Recurrent Scan Since 2020"
    item = Scored(
        StoredPaper(3, Paper.from_source(title="Chunked scans", abstract="Linear attention."),
                    date(2026, 3, 13)),
        9.0,
        (
            Match("linear attention", "abstract", 1, 3.0),
            Match(lender, "neighbours", 20, 6.0, "signal"),
        ),
        "Efficient attention",
    )  # fmt: skip
    digest = replace(sample_digest(), papers=(item,))
    [paper] = digest_view(digest, generated_at=NOW).papers
    assert [r.label for r in paper.reasons] == ["linear attention", "close to other matches"]
    closeness = paper.reasons[-1].detail
    assert len(closeness) <= 60 and closeness.endswith("…") and lender.startswith(closeness[:-1])
    text = render_text(ENV, digest_view(digest, generated_at=NOW))
    assert text.index("linear attention (abstract)") < text.index("close to other matches")
