"""Parse Hugging Face Papers JSON: daily_papers, papers/search and papers/ID responses.

Pure: bytes in, a Listing out. Quirks handled (see FORMATS.md in the fixtures):
- the item-level ``publishedAt`` is shifted to the previous US-Eastern evening but labelled
  ``Z``; the arXiv date is the UTC day of ``paper.publishedAt``, which is what we keep;
- ``ai_summary``/``ai_keywords``, ``githubRepo``/``githubStars`` and ``projectPage`` are often
  absent: absent stays None, never guessed;
- authors marked ``hidden`` are not shown on Hugging Face, so we leave them out too.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from digest.errors import ParseError
from digest.ids import parse_arxiv_id
from digest.models import Paper
from digest.sources.parse.dates import iso_day
from digest.sources.parse.listing import Listing

HF_PAPER_URL = "https://huggingface.co/papers/{id}"


def parse_hf_json(content: bytes | str, origin: str) -> Listing:
    """Parse a daily_papers or search array, or a single paper object."""
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"{origin}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and "id" in data and "title" in data:
        items: list[Any] = [data]
    elif isinstance(data, list):
        items = data
    elif isinstance(data, dict) and "error" in data:
        raise ParseError(f"{origin}: the Hugging Face API answered with an error: {data['error']}")
    else:
        raise ParseError(
            f"{origin}: expected a JSON array of daily papers or one paper object, "
            f"got a JSON {type(data).__name__}"
        )
    listing = Listing()
    listed_days: set[date] = set()
    for index, item in enumerate(items):
        try:
            paper, listed = _parse_item(item)
        except (KeyError, TypeError, ValueError) as exc:
            listing.skip(origin, f"item {index}", _reason(exc))
            continue
        listing.add(paper, origin, f"item {index}")
        if listed:
            listed_days.add(listed)
    if len(listed_days) == 1:
        listing.listed_on = listed_days.pop()
    return listing


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def _parse_item(item: Any) -> tuple[Paper, date | None]:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {type(item).__name__}")
    paper: dict[str, Any] = item.get("paper", item)
    parsed = parse_arxiv_id(str(paper["id"]))
    if parsed is None:
        raise ValueError(f"paper.id {paper['id']!r} is not an arXiv id")
    arxiv_id, version = parsed
    title = paper.get("title") or item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("no title")
    authors = tuple(
        author["name"].strip()
        for author in paper.get("authors") or ()
        if isinstance(author, dict) and author.get("name") and not author.get("hidden")
    )
    return (
        Paper.from_source(
            title=title,
            abstract=paper.get("summary") or item.get("summary") or "",
            arxiv_id=arxiv_id,
            version=version,
            authors=authors,
            published=iso_day(paper.get("publishedAt")),
            url=HF_PAPER_URL.format(id=arxiv_id),
            upvotes=_int(paper.get("upvotes")),
            comments=_int(item.get("numComments")),
            github_repo=_str(paper.get("githubRepo")),
            github_stars=_int(paper.get("githubStars")),
            project_page=_str(paper.get("projectPage")),
            ai_summary=_str(paper.get("ai_summary")),
            ai_keywords=tuple(k for k in paper.get("ai_keywords") or () if isinstance(k, str)),
        ),
        iso_day(paper.get("submittedOnDailyAt")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
