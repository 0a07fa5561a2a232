"""Date fields as sources write them, read leniently: a bad date is unknown, not an error."""

from __future__ import annotations

from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any


def iso_day(value: Any) -> date | None:
    """The calendar day of an ISO-8601 timestamp, in the timestamp's own offset."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


def rfc822_day(value: str) -> date | None:
    """The calendar day of an RSS date, in the offset it is written in.

    arXiv stamps feeds with US-Eastern midnight of the announcement day; converting to
    UTC first would still give that day, but other zones would not, so keep its own.
    """
    try:
        return parsedate_to_datetime(value).date() if value.strip() else None
    except (TypeError, ValueError, IndexError):
        return None
