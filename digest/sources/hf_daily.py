"""The ``hf_daily`` source: Hugging Face Daily Papers, day by day, with catch-up.

Each run reads today's list and re-reads the ``recheck_days`` before it (papers are added
to a day's list after the day has started). After downtime it also reads every day missed
since the last successful run, at most ``max_catch_up_days``. A day whose list fills a
page is read page by page, until a page that is not full.

The cursor only ever records what was stored. ``last_day`` moves to today only when every
day of the run was read to its end. Validators are kept per page (``pages``, keyed
``DAY#PAGE``), each with whether that page was full: a page's validators are saved with
the papers of that page, in one transaction, so a 304 for it means "you have stored this
page". A 304 on a full page therefore goes on to the next page, and only a 304 on the
day's last, short page ends the day; a page that failed has no validators and is read in
full next time, whatever happened to the pages before it. An unchanged day still costs
one 304 per page and nothing else, and a day whose later pages failed is finished on the
next run instead of being taken as unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from digest.config import HfDailySettings
from digest.errors import DigestError, SourceError
from digest.sources.base import FetchContext, SourceResult
from digest.sources.parse.hf_json import parse_hf_json

MAX_PAGES = 20  # a day has far fewer papers than 20 full pages; stop a runaway loop


class HfDailySource:
    def __init__(self, settings: HfDailySettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.url = f"{settings.base_url}/api/daily_papers"

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
        cursor.pop("validators", None)  # an older layout, without the pages' fullness
        pages: dict[str, dict[str, Any]] = dict(cursor.get("pages", {}))
        last_done = date.fromisoformat(cursor["last_day"]) if cursor.get("last_day") else None
        days = self.days_to_read(context.today, last_done)
        for day in days:
            context.progress(f"{self.name}: papers of {day.isoformat()}")
            try:
                self.read_day(context, day, pages, result)
            except DigestError as exc:
                result.errors.append(f"{day.isoformat()}: {exc}")
        cursor["pages"] = {key: page for key, page in pages.items() if key[:10] >= f"{days[0]}"}
        if not result.errors:
            cursor["last_day"] = context.today.isoformat()
        result.cursor = cursor
        return result

    def read_day(
        self,
        context: FetchContext,
        day: date,
        pages: dict[str, dict[str, Any]],
        result: SourceResult,
    ) -> None:
        """Read one day's pages into ``result``, and ``pages`` for every page stored.

        Raises DigestError when a page cannot be read; the pages before it stay recorded
        (their papers are in ``result``), the failed one and those after it do not.
        """
        assert context.http is not None
        for page in range(MAX_PAGES):
            key = f"{day.isoformat()}#{page}"
            known = pages.pop(key, None)
            validators = known.get("validators") if known else None
            fetched = context.http.get(
                self.url,
                params={"date": day.isoformat(), "limit": self.settings.page_size, "p": page},
                validators=validators,
                headers=self.auth_headers(),
            )
            result.requests.append(fetched.summary())
            if fetched.not_modified:
                if not known or not validators:
                    raise SourceError(
                        f"{fetched.url}: answered 304 Not Modified to a request without "
                        "validators; the page is read again on the next run"
                    )
                pages[key] = known
                full = bool(known.get("full"))
            else:
                listing = parse_hf_json(fetched.content, fetched.url)
                result.warnings.extend(listing.warnings)
                result.papers.extend(p.with_source(self.name) for p in listing.papers)
                full = listing.entries >= self.settings.page_size
                pages[key] = {"validators": fetched.validators, "full": full}
            if not full:
                _forget_pages_after(pages, day, page)
                return
        raise SourceError(
            f"{self.url}?date={day.isoformat()}: more than {MAX_PAGES} full pages of "
            f"{self.settings.page_size}; the rest of the day was not read",
            hint="raise page_size (at most 100), or report this to paper-digest",
        )

    def auth_headers(self) -> Mapping[str, str]:
        token = os.environ.get(self.settings.token_env) if self.settings.token_env else None
        return {"Authorization": f"Bearer {token}"} if token else {}


def _forget_pages_after(pages: dict[str, dict[str, Any]], day: date, last: int) -> None:
    """Drop what was kept for pages past a day's last one (the day's list got shorter)."""
    prefix = f"{day.isoformat()}#"
    for key in [k for k in pages if k.startswith(prefix) and int(k[len(prefix) :]) > last]:
        del pages[key]
