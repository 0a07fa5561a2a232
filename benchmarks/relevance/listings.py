"""The second labelled set: the daily listings among the recorded service responses.

``../shared/fixtures`` holds real responses of the Hugging Face Daily Papers API, the
arXiv API and RSS feeds, and two community feeds of daily papers, from days in 2026 that
the seed captures do not cover. They are read here with the project's own parser, as a
run reads them, and form a corpus none of the ranking's constants were chosen on.

A paper is named ``FOLDER/FILE:INDEX``: the response that first lists it (responses in
the order of the day in their name, then of their path) and its 0-based position in that
response's parsed listing. A paper listed again (by arXiv id, or by normalised title where
a response has no id) keeps its first name. Its day is the date in the first response's
name: each day's responses are one day of a reader's stream.

Only listings are read: lookups of a single paper, searches of other services (PubMed,
Semantic Scholar, bioRxiv, medRxiv) and the arXiv manual's examples are not.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from digest.models import Paper, StoredPaper
from digest.sources.parse.detect import parse_listing

HERE = Path(__file__).resolve().parent
DEFAULT_FIXTURES = HERE.parents[2] / "shared" / "fixtures"
LISTINGS = (  # the daily listings, as globs under the fixtures folder
    "hf_daily_papers/daily_papers_*.json",
    "arxiv_api/query_*_2026-*.xml",
    "arxiv_rss/rss_*.xml",
    "other/*daily_papers*.xml",
)
_DAY = re.compile(r"(20\d\d)-(\d\d)(?:-(\d\d))?")


def day_of(path: Path) -> date:
    """The date in a response's name (the first of its month when it gives no day)."""
    found = _DAY.search(path.name)
    if found is None:
        raise ValueError(f"{path}: no date (YYYY-MM or YYYY-MM-DD) in the file name")
    year, month, day = found.groups()
    return date(int(year), int(month), int(day or 1))


def listing_files(fixtures: Path) -> list[Path]:
    """The listings, by day, then path."""
    found = {path for pattern in LISTINGS for path in fixtures.glob(pattern)}
    return sorted(found, key=lambda path: (day_of(path), path.relative_to(fixtures).as_posix()))


def _keys(paper: Paper) -> list[str]:
    return [key for key in (paper.arxiv_id, paper.title_key) if key]


def load_listing_papers(fixtures: Path) -> dict[str, StoredPaper]:
    """The distinct papers of the listings by id, in the order they were first listed."""
    papers: dict[str, StoredPaper] = {}
    seen: set[str] = set()
    for path in listing_files(fixtures):
        name = path.relative_to(fixtures).as_posix()
        day = day_of(path)
        listing = parse_listing(path.read_bytes(), name, today=day)
        for index, paper in enumerate(listing.papers):
            if any(key in seen for key in _keys(paper)):
                continue
            seen.update(_keys(paper))
            papers[f"{name}:{index}"] = StoredPaper(len(papers) + 1, paper, day)
    return papers
