"""Acceptance: replaying the real captures as three days delivers every paper exactly once."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

from conftest import day
from digest.config import load_config
from digest.pipeline import run_once


class _PaperRefs(HTMLParser):
    """Collects data-ref of every paper card in a digest page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "div" and values.get("class") == "paper" and values.get("data-ref"):
            self.refs.append(values["data-ref"] or "")


def page_refs(path: Path) -> list[str]:
    parser = _PaperRefs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.refs


def _seq(page: Path) -> int:
    """A digest page's number that day: 2026-03-13.html is 1, 2026-03-13-2.html is 2."""
    stem = page.stem
    return int(stem.rsplit("-", 1)[1]) if stem.count("-") == 3 else 1


def _replay(config_path: Path, capture: Path, n: int, clock):
    inbox = config_path.parent / "inbox"
    for old in inbox.iterdir():
        old.unlink()
    shutil.copy(capture, inbox / capture.name)
    clock.advance(days=1)
    return run_once(load_config(config_path), today=day(n), clock=clock)


def test_three_days_deliver_226_papers_once_each(seeds, make_config, clock):
    config_path = make_config()
    reports = [_replay(config_path, capture, n, clock) for n, capture in enumerate(seeds)]

    assert [r.sources["inbox"].new for r in reports] == [119, 81, 26]
    assert [r.sources["inbox"].papers for r in reports] == [119, 87, 38]
    assert [r.subscribers["all"].delivered for r in reports] == [119, 81, 26]
    assert [r.subscribers["all"].selected for r in reports] == [119, 81, 26]
    assert all(r.ok for r in reports)

    pages = config_path.parent / "out" / "pages" / "all"
    # A day whose digest is too large for one email has one page per email, in order.
    days = [sorted(pages.glob(f"{day(n).isoformat()}*.html"), key=_seq) for n in range(3)]
    refs = [ref for found in days for page in found for ref in page_refs(page)]
    assert len(refs) == 226
    assert len(set(refs)) == 226

    # The report lists the same papers in the same order as the pages.
    listed = [p["id"] for r in reports for p in r.subscribers["all"].papers]
    assert listed == refs


def test_replaying_any_day_again_delivers_nothing(seeds, make_config, clock):
    config_path = make_config()
    for n, capture in enumerate(seeds):
        _replay(config_path, capture, n, clock)
    emails = config_path.parent / "out" / "email" / "all"
    before = {p.name: p.stat().st_mtime_ns for p in emails.iterdir()}

    for n, capture in enumerate(seeds):
        report = _replay(config_path, capture, n, clock)
        assert report.sources["inbox"].new == 0
        assert report.subscribers["all"].candidates == 0
        assert report.subscribers["all"].delivered == 0
        assert report.subscribers["all"].deliveries == []
        assert report.ok

    after = {p.name: p.stat().st_mtime_ns for p in emails.iterdir()}
    assert after == before  # no new email, no email rewritten


def test_the_same_paper_in_two_files_of_one_run_is_one_paper(seeds, make_config, clock):
    config_path = make_config()
    inbox = config_path.parent / "inbox"
    shutil.copy(seeds[0], inbox / "a.txt")
    shutil.copy(seeds[0], inbox / "b.txt")
    report = run_once(load_config(config_path), today=day(0), clock=clock)
    assert report.sources["inbox"].papers == 238
    assert report.sources["inbox"].new == 119
    assert report.subscribers["all"].delivered == 119
