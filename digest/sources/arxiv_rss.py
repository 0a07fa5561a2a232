"""The ``arxiv_rss`` source: arXiv's announcement feed for some categories.

One request a run (categories joined with ``+``, as arXiv allows), through the arXiv
throttle. The feed holds one day's announcements: an empty feed on weekends and holidays
is normal. A feed still dated before today (US-Eastern, once arXiv has had until 06:00 to
rebuild it) is reported as stale, so a silent outage is not mistaken for a quiet day. The
feed cannot be caught up after downtime: pair it with an ``arxiv_api`` source for that.
"""

from __future__ import annotations

from datetime import timedelta
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
            if fetched.not_modified:
                feed_day = cursor.get("feed_day")
            else:
                listing = parse_arxiv_rss(fetched.content, fetched.url)
                result.warnings.extend(listing.warnings)
                keep = set(self.settings.announce_types)
                result.papers = [
                    p.with_source(self.name) for p in listing.papers if p.announce_type in keep
                ]
                feed_day = listing.listed_on.isoformat() if listing.listed_on else None
                cursor["validators"] = fetched.validators
                cursor["feed_day"] = feed_day
        except DigestError as exc:
            result.errors.append(str(exc))
            result.cursor = context.cursor
            return result
        expected = (context.now.astimezone(ARXIV_ZONE) - REBUILD_GRACE).date()
        if feed_day is not None and feed_day < expected.isoformat():
            result.stale = True
            result.warnings.append(
                f"{self.url}: the feed is still dated {feed_day}, expected {expected.isoformat()}: "
                "arXiv has not rebuilt it yet; its new papers come on a later run"
            )
        result.cursor = cursor
        return result
