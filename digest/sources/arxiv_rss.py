"""The ``arxiv_rss`` source: arXiv's announcement feed for some categories.

One request a run (categories joined with ``+``, as arXiv allows), through the arXiv
throttle. The feed holds one day's announcements: an empty feed on weekends and holidays
is normal. A feed still dated before the run's digest date (once arXiv has had until
06:00 US-Eastern of that day to rebuild it) is reported as stale, so a silent outage is
not mistaken for a quiet day; so is an empty feed that carries no date at all, which
cannot be told from an outage. The digest date is the run's (``--date`` sets it), not the
wall clock's, so a run for another day judges the feed by that day. The feed cannot be
caught up after downtime: pair it with an ``arxiv_api`` source for that.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.config import ArxivRssSettings
from digest.errors import DigestError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.arxiv_rss import parse_arxiv_rss

ARXIV_ZONE = ZoneInfo("America/New_York")
REBUILD_GRACE = timedelta(hours=6)  # feeds are rebuilt after midnight Eastern, sometimes late


class ArxivRssSource:
    def __init__(self, settings: ArxivRssSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.url = f"{settings.base_url}/rss/{'+'.join(settings.categories)}"

    def fetch(self, context: FetchContext) -> SourceResult:
        assert context.http is not None, "the arxiv_rss source needs the HTTP layer"
        result = SourceResult(self.name)
        cursor = dict(context.cursor)
        context.progress(f"{self.name}: {self.url}")
        try:
            fetched = context.http.get(
                self.url, validators=cursor.get("validators"), throttle="arxiv"
            )
            result.requests.append(fetched.summary())
            if not fetched.not_modified:
                listing = parse_arxiv_rss(fetched.content, fetched.url)
                result.warnings.extend(listing.warnings)
                keep = set(self.settings.announce_types)
                result.papers = [
                    p.with_source(self.name) for p in listing.papers if p.announce_type in keep
                ]
                cursor["validators"] = fetched.validators
                cursor["feed_day"] = listing.listed_on.isoformat() if listing.listed_on else None
                cursor["feed_entries"] = listing.entries
        except DigestError as exc:
            result.errors.append(str(exc))
            result.cursor = context.cursor
            return result
        # A 304 is the feed the cursor describes: judge it by the date and size kept there.
        why = stale_because(
            cursor.get("feed_day"), cursor.get("feed_entries"), context.today, context.now
        )
        if why:
            result.stale = True
            result.warnings.append(f"{self.url}: {why}; its new papers come on a later run")
        result.cursor = cursor
        return result


def expected_feed_day(today: date, now: datetime) -> date:
    """The date arXiv's feed should carry on a run for digest date ``today`` at ``now``.

    Today's feed, unless the run is so early that arXiv may not have rebuilt it yet
    (before 06:00 US-Eastern): then the day before's. A run for a past day (``--date``)
    expects that day's feed, whatever the wall clock says.
    """
    rebuilt = (now.astimezone(ARXIV_ZONE) - REBUILD_GRACE).date()
    return min(today, rebuilt)


def stale_because(
    feed_day: str | None, entries: int | None, today: date, now: datetime
) -> str | None:
    """Why the feed read looks stale (None when it does not): dated before the expected
    day, or empty with no date to show it is today's quiet day and not an outage."""
    expected = expected_feed_day(today, now).isoformat()
    if feed_day is None:
        if entries == 0:
            return (
                "the feed is empty and carries no date (no <pubDate> in its channel), so "
                f"an outage cannot be told from a quiet day; expected a feed of {expected}"
            )
        return None
    if feed_day < expected:
        return (
            f"the feed is still dated {feed_day}, expected {expected}: arXiv has not rebuilt it yet"
        )
    return None
