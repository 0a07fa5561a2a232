"""Digests rendered without being recorded: `digest preview` and `digest send-test`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from digest.channels import DeliveryContext, build_channels, close_channels
from digest.config import Config, SubscriberSettings
from digest.deliver import owed_work
from digest.http import Http
from digest.models import Digest
from digest.pipeline import (
    Clock,
    Progress,
    digest_date,
    ingest,
    make_http,
    open_store,
    silent,
    templates_of,
    utc_now,
)
from digest.ranker import Ranker
from digest.reader_lookup import find_reader
from digest.render.email import render_html, render_text
from digest.render.environment import make_environment
from digest.render.pages import render_markdown
from digest.report import RunReport
from digest.sample import sample_digest
from digest.sources import FetchContext, Source, build_sources

PREVIEW_FORMATS = ("html", "text", "eml", "markdown")


def preview(
    config: Config,
    subscriber_name: str,
    *,
    fmt: str = "html",
    today: date | None = None,
    clock: Clock = utc_now,
    sources: Sequence[Source] | None = None,
    http: Http | None = None,
    progress: Progress = silent,
) -> tuple[Digest, bytes]:
    """Render what ``subscriber_name`` (a name or address, of a config or store reader)
    would get today, recording nothing at all.

    Sources are read and the store is consulted inside a transaction that is rolled back,
    so the preview is exactly the next run's digest, and the next run is unaffected.
    """
    now = clock()
    today = today or digest_date(config, now)
    report = RunReport(date=today, dry_run=True)
    own_http = http is None
    http = http or make_http(config)
    with open_store(config, dry_run=True) as store:
        subscriber = find_reader(config, store, subscriber_name)  # config or store reader
        store.acquire_run(now)
        fetch = FetchContext(today=today, now=now, http=http, progress=progress)
        try:
            ingest(store, sources or build_sources(config), fetch, clock, report)
        finally:
            if own_http:
                http.close()
        candidates = owed_work(store, [subscriber], today)[subscriber.name].candidates
        ranker = Ranker.for_reader(config, store, today, subscriber, candidates)
        ranking, _warnings = ranker.rank(subscriber, candidates)
        digest = Digest(
            subscriber=subscriber.name,
            date=today,
            seq=1,
            papers=tuple(ranking.selected),
            candidates=len(candidates),
        )
        context = DeliveryContext(
            config=config, env=make_environment(templates_of(config)), store=store, now=now
        )
        return digest, render_digest(digest, subscriber, context, fmt)


def render_digest(
    digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext, fmt: str
) -> bytes:
    """One digest in one of PREVIEW_FORMATS, as bytes ready to write to a file."""
    view = context.view(digest, subscriber)
    if fmt == "html":
        return render_html(context.env, view).encode()
    if fmt == "text":
        return render_text(context.env, view).encode()
    if fmt == "markdown":
        return render_markdown(context.env, view).encode()
    if fmt == "eml":
        return context.email(digest, subscriber).as_bytes()
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(PREVIEW_FORMATS)}")


def send_test(config: Config, to: str, *, clock: Clock = utc_now) -> str:
    """Send the sample digest to ``to`` through the configured email transport.

    Nothing is recorded; the store is opened only because channels expect one.
    """
    now = clock()
    subscriber = SubscriberSettings(name="send-test", email=to, channels=("email",))
    channels = build_channels(config)
    try:
        with open_store(config, dry_run=True) as store:
            context = DeliveryContext(
                config=config, env=make_environment(templates_of(config)), store=store, now=now
            )
            digest = sample_digest(subscriber.name, digest_date(config, now))
            return channels["email"].deliver(digest, subscriber, context)
    finally:
        close_channels(channels)
