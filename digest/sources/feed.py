"""The ``feed`` source: any RSS or Atom URL, read with a conditional GET."""

from __future__ import annotations

from digest.config import FeedSettings
from digest.errors import DigestError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.feed import parse_feed


class FeedSource:
    def __init__(self, settings: FeedSettings) -> None:
        self.name = settings.name
        self.settings = settings

    def fetch(self, context: FetchContext) -> SourceResult:
        assert context.http is not None, "the feed source needs the HTTP layer"
        result = SourceResult(self.name)
        cursor = dict(context.cursor)
        context.progress(f"{self.name}: {self.settings.url}")
        try:
            fetched = context.http.get(self.settings.url, validators=cursor.get("validators"))
            result.requests.append(fetched.summary())
            if not fetched.not_modified:
                listing = parse_feed(fetched.content, fetched.url)
                result.warnings.extend(listing.warnings)
                result.papers = [p.with_source(self.name) for p in listing.papers]
                cursor["validators"] = fetched.validators
        except DigestError as exc:
            result.errors.append(str(exc))
            cursor = dict(context.cursor)
        result.cursor = cursor
        return result
