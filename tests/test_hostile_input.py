"""Acceptance: untrusted titles are escaped in HTML, absent from headers, and feeds stay valid."""

from __future__ import annotations

import email
import email.policy
import json
from html.parser import HTMLParser
from pathlib import Path

import feedparser

from conftest import day
from digest.config import load_config
from digest.pipeline import open_store, run_once

HOSTILE_TITLES = [
    "Attention <script>alert('x')</script> Is All You Need",
    'Quoting "><img src=x onerror=alert(1)> in Titles',
    "Line\r\nBcc: victim@example.org\r\nSubject: injected",
    "=?utf-8?q?=0A?= Encoded-Word Smuggling & <b>Bold</b> Claims",
    "Right-to-left \u202ekcatta\u202c and emoji 🚀 with control\x0b\x01characters",
]
ABSTRACT = (
    "We study a problem. It is a hard problem with many parts and a long history. "
    "Our method solves it with a simple idea, and experiments on three benchmarks show "
    "large gains over strong baselines, while the analysis explains why it works so well."
)


class _Elements(HTMLParser):
    """What a browser would build: element names, attribute names, links and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def write_hostile_listing(folder: Path) -> None:
    """An HF daily_papers response (the format that carries arXiv ids) with hostile titles."""
    items = [
        {
            "paper": {
                "id": f"2603.0{i}001",
                "title": title,
                "summary": ABSTRACT + " <iframe src='https://evil.example'></iframe>",
                "authors": [{"name": "Mallory <script>", "hidden": False}],
                "publishedAt": "2026-03-12T00:00:00.000Z",
                "submittedOnDailyAt": "2026-03-13T00:00:00.000Z",
                "upvotes": i,
                "githubRepo": "javascript:alert(1)",
                "projectPage": 'https://example.org/project" onmouseover="alert(1)',
            },
            "numComments": 0,
        }
        for i, title in enumerate(HOSTILE_TITLES, start=1)
    ]
    (folder / "inbox" / "daily.json").write_text(json.dumps(items), encoding="utf-8")


def test_hostile_titles_are_escaped_and_kept_out_of_headers(make_config, clock):
    config_path = make_config()
    write_hostile_listing(config_path.parent)
    report = run_once(load_config(config_path), today=day(0), clock=clock)
    assert report.ok, report.to_json()
    out = config_path.parent / "out"

    eml = out / "email" / "all" / "2026-03-13.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]

    for name, value in message.items():
        assert "\n" not in value and "\r" not in value, name
        for marker in ("script", "img", "Bcc", "victim", "Encoded-Word", "kcatta"):
            assert marker not in value, (name, value)
    assert message["Bcc"] is None
    assert message["Subject"] == "Paper digest for 2026-03-13: 5 new"

    for html in (html_part.get_content(), (out / "pages" / "all" / "2026-03-13.html").read_text()):
        page = _Elements()
        page.feed(html)
        assert {"script", "img", "iframe", "b"}.isdisjoint(page.tags)
        assert not any(name.startswith("on") for name in page.attributes)
        assert not any(v.lower().startswith("javascript:") for v in page.hrefs)
        assert "Attention <script>alert('x')</script> Is All You Need" in page.text
        assert 'Quoting "><img src=x onerror=alert(1)> in Titles' in page.text

    text = text_part.get_content()
    assert "Attention <script>alert('x')</script> Is All You Need" in text  # plain text is inert

    markdown = (out / "markdown" / "all" / "2026-03-13.md").read_text()
    assert "<script>" not in markdown and "<img" not in markdown and "<iframe" not in markdown

    invisible = str.maketrans("", "", "\x01\u202e\u202c")  # dropped at ingest
    expected = {" ".join(t.translate(invisible).split()) for t in HOSTILE_TITLES}
    for feed_file in ("all.rss", "all.atom"):
        feed = feedparser.parse((out / "feeds" / feed_file).read_bytes())
        assert feed.bozo == 0, feed.get("bozo_exception")
        assert {entry.title for entry in feed.entries} == expected
        assert len(feed.entries) == len(HOSTILE_TITLES)


# Bidi overrides and isolates reorder what a reader sees; zero-width characters hide inside
# words; line separators break lines in some readers and not others.
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f\ufeff\u2028\u2029\u00ad\u2060"


def test_bidi_overrides_and_zero_width_characters_reach_no_channel(make_config, clock):
    subscribers = """
[[subscribers]]
name = "all"
email = "all@example.org"
keywords = ["attention"]
max_papers = 10
channels = ["email", "feed", "page", "markdown"]
"""
    config_path = make_config(subscribers=subscribers)
    items = [
        {
            "paper": {
                "id": "2603.01001",
                "title": "Atten\u200btion for \u202eexe.txt\u202c Files\ufeff",
                "summary": ABSTRACT + "\u2028Second\u2029paragraph \u2066isolated\u2069 text.",
                "authors": [{"name": "Eve\u200d \u202eAdams", "hidden": False}],
                "publishedAt": "2026-03-12T00:00:00.000Z",
            }
        }
    ]
    (config_path.parent / "inbox" / "daily.json").write_text(json.dumps(items), encoding="utf-8")
    report = run_once(load_config(config_path), today=day(0), clock=clock)
    assert report.ok, report.to_json()
    assert report.subscribers["all"].selected == 1  # "Atten\u200btion" matches "attention"

    with open_store(load_config(config_path)) as store:
        paper = store.find_paper("2603.01001").paper
    assert paper.title == "Attention for exe.txt Files"
    assert paper.title_raw == "Attention for exe.txt Files"
    assert paper.abstract == ABSTRACT + " Second paragraph isolated text."
    assert paper.authors == ("Eve Adams",)
    for text in (paper.title, paper.title_raw, paper.abstract, paper.abstract_raw, *paper.authors):
        assert not set(text) & set(INVISIBLE), repr(text)

    out = config_path.parent / "out"
    eml = out / "email" / "all" / "2026-03-13.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    rendered = {
        "text": message.get_body(preferencelist=("plain",)).get_content(),
        "html": message.get_body(preferencelist=("html",)).get_content(),
        "page": (out / "pages" / "all" / "2026-03-13.html").read_text(encoding="utf-8"),
        "markdown": (out / "markdown" / "all" / "2026-03-13.md").read_text(encoding="utf-8"),
        "rss": (out / "feeds" / "all.rss").read_text(encoding="utf-8"),
        "atom": (out / "feeds" / "all.atom").read_text(encoding="utf-8"),
    }
    for channel, text in rendered.items():
        assert "exe.txt Files" in text, channel
        assert "Eve Adams" in text or channel == "rss", channel  # RSS items name no authors
        found = sorted(f"U+{ord(c):04X}" for c in set(text) & set(INVISIBLE))
        assert not found, (channel, found)
    feed = feedparser.parse((out / "feeds" / "all.rss").read_bytes())
    assert [entry.title for entry in feed.entries] == ["Attention for exe.txt Files"]
