"""The ``hf_daily`` source: Hugging Face Daily Papers, day by day, with catch-up.

Each run reads today's list and re-reads the ``recheck_days`` before it (papers are added
to a day's list after the day has started). After downtime it also reads every day missed
since the last successful run, at most ``max_catch_up_days``. A day whose list fills a
page is read page by page. The cursor keeps the last day read successfully and each URL's
validators, so an unchanged list costs a 304 and nothing else.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

from digest.config import HfDailySettings
from digest.errors import DigestError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.hf_json import parse_hf_json

MAX_PAGES = 20  # a day has far fewer papers than 20 full pages; stop a runaway loop


class HfDailySource:
    def __init__(self, settings: HfDailySettings) -> None:
        self.name = settings.name
        self.settings = settings

    def days_to_read(self, today: date, last_done: date | None) -> list[date]:
        """Today, the days to re-check, and every day missed since ``last_done`` (bounded)."""
        start = today - timedelta(days=self.settings.recheck_days)
        if last_done is not None and last_done < start:
            start = last_done + timedelta(days=1)
        start = max(start, today - timedelta(days=self.settings.max_catch_up_days))
        return [start + timedelta(days=n) for n in range((today - start).days + 1)]

    def fetch(self, context: FetchContext) -> SourceResult:
        assert context.http is not None, "the hf_daily source needs the HTTP layer"
        result = SourceResult(self.name)
        cursor = dict(context.cursor)
        validators: dict[str, dict[str, str]] = dict(cursor.get("validators", {}))
        last_done = date.fromisoformat(cursor["last_day"]) if cursor.get("last_day") else None
        headers = {}
        if self.settings.token_env and os.environ.get(self.settings.token_env):
            headers["Authorization"] = f"Bearer {os.environ[self.settings.token_env]}"
        url = f"{self.settings.base_url}/api/daily_papers"
        days = self.days_to_read(context.today, last_done)
        for day in days:
            context.progress(f"{self.name}: papers of {day.isoformat()}")
            try:
                for page in range(MAX_PAGES):
                    params = {"date": day.isoformat(), "limit": self.settings.page_size, "p": page}
                    key = f"{day.isoformat()}#{page}"
                    fetched = context.http.get(
                        url, params=params, validators=validators.get(key), headers=headers
                    )
                    result.requests.append(fetched.summary())
                    if fetched.not_modified:
                        break
                    listing = parse_hf_json(fetched.content, fetched.url)
                    validators[key] = fetched.validators
                    result.warnings.extend(listing.warnings)
                    result.papers.extend(p.with_source(self.name) for p in listing.papers)
                    if len(listing.papers) + len(listing.warnings) < self.settings.page_size:
                        break
            except DigestError as exc:
                result.errors.append(f"{day.isoformat()}: {exc}")
        # Keep validators for what was read; move the day forward only if every day was read.
        cursor["validators"] = {k: v for k, v in validators.items() if _recent(k, days[0])}
        if not result.errors:
            cursor["last_day"] = context.today.isoformat()
        result.cursor = cursor
        return result


def _recent(key: str, oldest: date) -> bool:
    return key[:10] >= oldest.isoformat()
