"""Recognise a listing's format from its content (never its file name) and parse it."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from digest.errors import ParseError
from digest.sources.parse.arxiv_api import parse_arxiv_api
from digest.sources.parse.arxiv_rss import parse_arxiv_rss
from digest.sources.parse.hf_json import parse_hf_json
from digest.sources.parse.listing import Listing
from digest.sources.parse.page_text import parse_page_text


class Format(StrEnum):
    HF_JSON = "Hugging Face papers JSON"
    ARXIV_RSS = "arXiv RSS/Atom feed"
    ARXIV_API = "arXiv API response"
    PAGE_TEXT = "papers page capture"


def detect_format(content: bytes, origin: str) -> Format:
    """Name the format of ``content``, or raise ParseError saying why it is none of ours."""
    if not content.strip():
        raise ParseError(f"{origin}: the file is empty")
    if b"\x00" in content[:8192]:
        raise ParseError(f"{origin}: a binary file, not a listing")
    try:
        head = content[:4096].decode("utf-8-sig", errors="strict").lstrip()
    except UnicodeDecodeError as exc:
        if exc.start < len(content[:4096]) - 4:  # not just a character cut at the boundary
            raise ParseError(f"{origin}: not UTF-8 text (a binary file?)") from None
        head = content[: exc.start].decode("utf-8-sig").lstrip()
    lowered = head[:512].lower()
    if head.startswith(("[", "{")):
        return Format.HF_JSON
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:200]:
        raise ParseError(
            f"{origin}: an HTML page, not a listing",
            hint="servers send HTML error pages; save the API's JSON or the feed's XML instead",
        )
    if head.startswith("<"):
        if "<rss" in lowered or "rss.arxiv.org" in lowered:
            return Format.ARXIV_RSS
        if "<feed" in lowered and ("opensearch" in lowered or "arxiv.org/api" in lowered):
            return Format.ARXIV_API
        if "<feed" in lowered:
            return Format.ARXIV_RSS
        raise ParseError(f"{origin}: XML that is neither an RSS nor an Atom feed")
    return Format.PAGE_TEXT


def parse_listing(content: bytes, origin: str, *, today: date | None = None) -> Listing:
    """Detect the format of ``content`` and parse it with the matching parser."""
    kind = detect_format(content, origin)
    if kind is Format.HF_JSON:
        return parse_hf_json(content, origin)
    if kind is Format.ARXIV_RSS:
        return parse_arxiv_rss(content, origin)
    if kind is Format.ARXIV_API:
        return parse_arxiv_api(content, origin)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{origin}: not UTF-8 text at byte {exc.start}") from None
    return parse_page_text(text, origin, today=today)
