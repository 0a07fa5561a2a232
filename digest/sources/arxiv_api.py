"""The ``arxiv_api`` source: an arXiv search, newest submissions first, caught up after downtime.

Each run asks for the papers submitted since ``lookback_days`` before the last successful
run (arXiv announces papers up to a few days after their submission, so the windows of
consecutive runs overlap; the store drops what it has already seen). After downtime the
window reaches back to the last success, at most ``max_catch_up_days``. Results come in
pages through the arXiv throttle, at least 3 seconds apart. A run counts as a success
only when it read the whole window: a failed page, or more results than ``max_results``
(the oldest left unread), leaves the last success where it was, so the next window
starts as early again.
"""

from __future__ import annotations

from datetime import date, timedelta

from digest.config import ArxivApiSettings
from digest.errors import DigestError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.arxiv_api import parse_arxiv_api


class ArxivApiSource:
    def __init__(self, settings: ArxivApiSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.url = f"{settings.base_url}/api/query"

    def window(self, today: date, last_done: date | None) -> tuple[date, date]:
        """First and last submission day to ask for (both inclusive)."""
        anchor = min(last_done, today) if last_done else today
        start = anchor - timedelta(days=self.settings.lookback_days)
        start = max(start, today - timedelta(days=self.settings.max_catch_up_days))
        return start, today

    def search_query(self, start: date, end: date) -> str:
        until = end + timedelta(days=1)
        return (
            f"({self.settings.query}) AND submittedDate:[{start:%Y%m%d}0000 TO {until:%Y%m%d}0000]"
        )

    def fetch(self, context: FetchContext) -> SourceResult:
        assert context.http is not None, "the arxiv_api source needs the HTTP layer"
        result = SourceResult(self.name)
        cursor = dict(context.cursor)
        last_done = date.fromisoformat(cursor["last_day"]) if cursor.get("last_day") else None
        start, end = self.window(context.today, last_done)
        query = self.search_query(start, end)
        offset, total, cut = 0, None, False
        try:
            while offset < self.settings.max_results and (total is None or offset < total):
                size = min(self.settings.page_size, self.settings.max_results - offset)
                context.progress(
                    f"{self.name}: results {offset + 1}-{offset + size}"
                    + (f" of {total}" if total else "")
                )
                fetched = context.http.get(
                    self.url,
                    params={
                        "search_query": query,
                        "sortBy": "submittedDate",
                        "sortOrder": "descending",
                        "start": offset,
                        "max_results": size,
                    },
                    throttle="arxiv",
                )
                result.requests.append(fetched.summary())
                listing = parse_arxiv_api(fetched.content, fetched.url)
                result.warnings.extend(listing.warnings)
                result.papers.extend(p.with_source(self.name) for p in listing.papers)
                total = listing.total_results if listing.total_results is not None else 0
                entries = listing.entries
                if entries == 0:
                    if offset < total:
                        result.warnings.append(
                            f"{fetched.url}: arXiv reported {total} results but sent none from "
                            f"{offset}; the rest come on the next run"
                        )
                        result.errors.append(
                            f"{self.url}: incomplete results ({offset} of {total})"
                        )
                    break
                offset += entries
            cut = total is not None and total > self.settings.max_results
            if cut:
                result.warnings.append(
                    f"{self.name}: {total} results, only the newest {self.settings.max_results} "
                    f"were read; the days from {start.isoformat()} are asked for again on the "
                    "next run; narrow the query or raise max_results"
                )
        except DigestError as exc:
            result.errors.append(str(exc))
        # The window counts as read only when all of it was: else the next one starts as early.
        if not result.errors and not cut:
            cursor["last_day"] = end.isoformat()
        result.cursor = cursor
        return result
