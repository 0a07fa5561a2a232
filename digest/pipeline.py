"""``run_once``: the only place that sequences a run.

    lock -> ingest every source (a failing one is reported and skipped)
         -> for each subscriber: finish earlier digests' pending deliveries,
            diff (papers it is owed), rank, record the digest, deliver on each channel
         -> record the run and its report

Commit points make crashes safe: papers are stored per source; a digest is recorded
(papers in the ledger, one pending delivery per channel) before anything is delivered;
each delivery is marked done only after its channel confirmed. A crash anywhere leaves
either nothing to redo or pending deliveries that the next run completes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from digest.channels import Channel, DeliveryContext, build_channels, close_channels
from digest.config import Config, SubscriberSettings
from digest.errors import DigestError
from digest.http import Http, Throttle
from digest.models import Digest
from digest.rank import Ranking
from digest.ranker import Ranker
from digest.render.email import render_html, render_text
from digest.render.environment import make_environment
from digest.render.pages import render_markdown
from digest.report import DeliveryReport, RunReport, SourceReport, SubscriberReport
from digest.sample import sample_digest
from digest.sources import FetchContext, Source, build_sources
from digest.store import Store

log = logging.getLogger("digest")

Clock = Callable[[], datetime]
Progress = Callable[[str], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def digest_date(config: Config, now: datetime) -> date:
    """Today in the config's time zone: the default date of a run's digests."""
    return now.astimezone(config.zone).date()


def open_store(config: Config, *, dry_run: bool = False) -> Store:
    return Store.open(config.resolve(config.store.path), dry_run=dry_run)


def make_http(config: Config) -> Http:
    """The run's HTTP layer, with the arXiv throttle shared through a file beside the store."""
    store_path = config.resolve(config.store.path)
    throttle_path = store_path.with_name(store_path.name + ".arxiv-throttle")
    arxiv = Throttle(config.http.arxiv_interval, throttle_path, time.time, time.sleep)
    return Http(config.http, throttles={"arxiv": arxiv})


def _silent(_message: str) -> None:
    pass


def run_once(
    config: Config,
    *,
    today: date | None = None,
    dry_run: bool = False,
    clock: Clock = utc_now,
    sources: Sequence[Source] | None = None,
    only: Sequence[str] | None = None,
    http: Http | None = None,
    channels: dict[str, Channel] | None = None,
    progress: Progress = _silent,
) -> RunReport:
    """Run one digest: ingest, then diff, rank, render and deliver for every subscriber.

    Raises DigestError only when the run cannot start (store unusable, lock held);
    failures of single sources, subscribers or channels are in the report instead.
    ``http`` and ``progress`` default to the real HTTP layer and silence.
    """
    started = clock()
    today = today or digest_date(config, started)
    report = RunReport(date=today, dry_run=dry_run)
    own_http = http is None
    http = http or make_http(config)
    with open_store(config, dry_run=dry_run) as store:
        store.lock.acquire(started)
        report.run_id = store.start_run(today, started)
        try:
            fetch = FetchContext(today=today, now=started, http=http, progress=progress)
            ingest(
                store,
                sources if sources is not None else build_sources(config),
                fetch,
                clock,
                report,
            )
            context = DeliveryContext(
                config=config, env=make_environment(_templates(config)), store=store, now=clock()
            )
            channels = channels or build_channels(config, dry_run=dry_run)
            ranker = Ranker(store, today)
            try:
                for subscriber in config.subscribers:
                    if only and subscriber.name not in only:
                        continue
                    report.subscribers[subscriber.name] = serve_subscriber(
                        subscriber, today, store, channels, context, ranker, run_id=report.run_id
                    )
            finally:
                close_channels(channels)
        except BaseException as exc:
            report.error = f"run aborted: {exc!r}"
            store.finish_run(report.run_id, "failed", report.to_json(), clock())
            raise
        finally:
            if own_http:
                http.close()
        store.finish_run(report.run_id, "ok" if report.ok else "failed", report.to_json(), clock())
    return report


def ingest(
    store: Store, sources: Sequence[Source], base: FetchContext, clock: Clock, report: RunReport
) -> None:
    """Fetch each source and store its papers; one source's failure never stops another.

    A source's papers and its new cursor are stored in one transaction, so the cursor
    never gets ahead of what was stored.
    """
    for source in sources:
        entry = report.sources[source.name] = SourceReport()
        context = replace(base, cursor=store.get_cursor(source.name))
        try:
            result = source.fetch(context)
        except DigestError as exc:
            entry.error = str(exc)
            log.error("source %s failed: %s", source.name, exc)
            continue
        except Exception as exc:  # a bug in one source must not cost the others their papers
            entry.error = f"unexpected error: {exc!r}"
            log.exception("source %s crashed", source.name)
            continue
        for warning in result.warnings:
            log.warning("%s", warning)
        entry.warnings = list(result.warnings)
        entry.papers = len(result.papers)
        entry.error = result.error
        entry.stale = result.stale
        entry.requests = list(result.requests)
        if result.error:
            log.error("source %s: %s", source.name, result.error)
        with store.transaction():
            if result.papers:
                entry.new = store.upsert_papers(result.papers, base.today, clock()).new
            if result.cursor is not None and result.cursor != context.cursor:
                store.set_cursor(source.name, result.cursor, clock())
        log.info("source %s: %d listings, %d new papers", source.name, entry.papers, entry.new)


def serve_subscriber(
    subscriber: SubscriberSettings,
    today: date,
    store: Store,
    channels: dict[str, Channel],
    context: DeliveryContext,
    ranker: Ranker,
    *,
    run_id: int | None = None,
) -> SubscriberReport:
    """Diff, rank, record and deliver one subscriber's digest; never raises."""
    entry = SubscriberReport()
    try:
        joined = store.register_subscriber(subscriber.name, today)
        candidates = store.pending_papers(subscriber.name, today, joined, subscriber.backfill_days)
        ranking, entry.warnings = ranker.rank(subscriber, candidates)
        entry.candidates = len(candidates)
        entry.selected = len(ranking.selected)
        entry.papers = paper_summaries(ranking)
        if candidates:
            store.create_digest(
                subscriber.name,
                today,
                ranking.selected,
                ranking.considered,
                subscriber.channels,
                run_id,
                context.now,
            )
        deliver_pending(subscriber, store, channels, context, entry)
    except Exception as exc:
        entry.error = f"{exc}" if isinstance(exc, DigestError) else f"unexpected error: {exc!r}"
        log.exception("subscriber %s failed", subscriber.name)
    return entry


def deliver_pending(
    subscriber: SubscriberSettings,
    store: Store,
    channels: dict[str, Channel],
    context: DeliveryContext,
    entry: SubscriberReport,
) -> None:
    """Deliver every digest of this subscriber that some channel has not confirmed yet."""
    by_digest: dict[int, list[str]] = {}
    for pending in store.pending_deliveries(subscriber.name):
        by_digest.setdefault(pending.digest_id, []).append(pending.channel)
    errors: list[str] = []
    for digest_id, names in by_digest.items():
        digest = store.load_digest(digest_id)
        complete = True
        for name in names:
            ok = _deliver_one(digest, name, subscriber, store, channels, context, entry, errors)
            complete = complete and ok
        if complete:
            entry.delivered += len(digest.papers)
    if errors:
        entry.error = "; ".join(errors)


def _deliver_one(
    digest: Digest,
    name: str,
    subscriber: SubscriberSettings,
    store: Store,
    channels: dict[str, Channel],
    context: DeliveryContext,
    entry: SubscriberReport,
    errors: list[str],
) -> bool:
    channel = channels.get(name)
    try:
        if channel is None:
            raise DigestError(f"no channel named {name!r}")
        where = channel.deliver(digest, subscriber, context)
    except Exception as exc:  # a channel failure stays pending; the others go on
        reason = str(exc) if isinstance(exc, DigestError | OSError) else repr(exc)
        store.mark_failed(digest.digest_id or 0, name, reason)
        entry.deliveries.append(DeliveryReport(digest.slug, name, "failed", reason))
        errors.append(f"{name} delivery of {digest.slug} failed: {reason}")
        log.error("%s: %s delivery of %s failed: %s", subscriber.name, name, digest.slug, reason)
        return False
    store.mark_delivered(digest.digest_id or 0, name, context.now)
    entry.deliveries.append(DeliveryReport(digest.slug, name, "delivered", where))
    log.info(
        "%s: %s delivered %s (%d papers) to %s",
        subscriber.name,
        name,
        digest.slug,
        len(digest.papers),
        where,
    )
    return True


def paper_summaries(ranking: Ranking) -> list[dict[str, object]]:
    """The selected papers as the JSON report lists them, in digest order."""
    return [
        {
            "id": item.paper.paper.ref,
            "title": item.paper.paper.title,
            "score": item.score,
            "section": item.section,
            "matched": [
                {"term": m.term, "field": m.field, "count": m.count, "points": m.points}
                for m in item.matches
            ],
        }
        for item in ranking.selected
    ]


def _templates(config: Config) -> Path | None:
    return config.resolve(config.templates) if config.templates else None


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
    progress: Progress = _silent,
) -> tuple[Digest, bytes]:
    """Render what ``subscriber_name`` would get today, recording nothing at all.

    Sources are read and the store is consulted inside a transaction that is rolled back,
    so the preview is exactly the next run's digest, and the next run is unaffected.
    """
    subscriber = config.subscriber(subscriber_name)
    now = clock()
    today = today or digest_date(config, now)
    report = RunReport(date=today, dry_run=True)
    own_http = http is None
    http = http or make_http(config)
    with open_store(config, dry_run=True) as store:
        store.lock.acquire(now)
        fetch = FetchContext(today=today, now=now, http=http, progress=progress)
        try:
            ingest(store, sources or build_sources(config), fetch, clock, report)
        finally:
            if own_http:
                http.close()
        joined = store.register_subscriber(subscriber.name, today)
        candidates = store.pending_papers(subscriber.name, today, joined, subscriber.backfill_days)
        ranking, _warnings = Ranker(store, today).rank(subscriber, candidates)
        digest = Digest(
            subscriber=subscriber.name,
            date=today,
            seq=1,
            papers=tuple(ranking.selected),
            candidates=len(candidates),
        )
        context = DeliveryContext(
            config=config, env=make_environment(_templates(config)), store=store, now=now
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
                config=config, env=make_environment(_templates(config)), store=store, now=now
            )
            digest = sample_digest(subscriber.name, digest_date(config, now))
            return channels["email"].deliver(digest, subscriber, context)
    finally:
        close_channels(channels)
