"""``run_once``: the only place that sequences a run.

    lock -> ingest every source (a failing one is reported and skipped)
         -> read what every subscriber is owed
         -> for each subscriber: rank, record the digest, deliver on each channel
            (and finish earlier digests' unconfirmed deliveries)
         -> record the run and its report

Commit points make crashes safe: papers are stored per source; a digest is recorded
(chosen papers in the ledger, its watermark, one pending delivery per channel) before
anything is delivered; each delivery is marked done only after its channel confirmed. A
crash anywhere leaves either nothing to redo or pending deliveries that the next run
completes.

On SQLite a run is exclusive (a lock file). On PostgreSQL several workers may run at
once: they ingest one after the other, and each subscriber is claimed by one worker; a
subscriber another worker holds is tried again at the end, so a crashed worker's
subscribers are taken over.
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
from digest.deliver import Work, owed_work, serve_subscriber
from digest.errors import DigestError
from digest.http import Http, Throttle
from digest.rank import Ranking
from digest.ranker import Ranker
from digest.render.environment import make_environment
from digest.report import RunReport, SourceReport, SubscriberReport, Timings
from digest.sources import FetchContext, Source, build_sources
from digest.store import Store

log = logging.getLogger("digest")

Clock = Callable[[], datetime]
Progress = Callable[[str], None]

CLAIM_PATIENCE = 600.0  # seconds to wait for a subscriber another worker is serving
BATCH = 512  # subscribers ranked together


def utc_now() -> datetime:
    return datetime.now(UTC)


def digest_date(config: Config, now: datetime) -> date:
    """Today in the config's time zone: the default date of a run's digests."""
    return now.astimezone(config.zone).date()


def open_store(config: Config, *, dry_run: bool = False) -> Store:
    target = config.store.database_url or config.resolve(config.store.path)
    return Store.open(target, dry_run=dry_run)


def make_http(config: Config) -> Http:
    """The run's HTTP layer, with the arXiv throttle shared through a file beside the store."""
    store_path = config.resolve(config.store.path)
    throttle_path = store_path.with_name(store_path.name + ".arxiv-throttle")
    arxiv = Throttle(config.http.arxiv_interval, throttle_path, time.time, time.sleep)
    return Http(config.http, throttles={"arxiv": arxiv})


def templates_of(config: Config) -> Path | None:
    return config.resolve(config.templates) if config.templates else None


def silent(_message: str) -> None:
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
    progress: Progress = silent,
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
        store.acquire_run(started)
        report.run_id = store.start_run(today, started)
        try:
            with report.timings.measure("ingest"), store.ingest_lock():
                fetch = FetchContext(today=today, now=started, http=http, progress=progress)
                ingest(
                    store,
                    sources if sources is not None else build_sources(config),
                    fetch,
                    clock,
                    report,
                )
            chosen = [s for s in config.subscribers if not only or s.name in only]
            channels = channels or build_channels(config, dry_run=dry_run)
            try:
                serve_all(config, chosen, today, store, channels, clock, report, progress)
            finally:
                close_channels(channels)
        except BaseException as exc:
            report.error = f"run aborted: {exc!r}"
            store.finish_run(report.run_id, "failed", report.summary_json(), clock())
            raise
        finally:
            if own_http:
                http.close()
        store.finish_run(
            report.run_id, "ok" if report.ok else "failed", report.summary_json(), clock()
        )
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


def serve_all(
    config: Config,
    subscribers: Sequence[SubscriberSettings],
    today: date,
    store: Store,
    channels: dict[str, Channel],
    clock: Clock,
    report: RunReport,
    progress: Progress,
) -> None:
    """Every subscriber's digest, each claimed by this worker before it is served.

    Subscribers are ranked a batch at a time (readers owed the same papers are scored
    together), then recorded and delivered one by one. On PostgreSQL another worker may
    hold a subscriber: it is left for later, and tried again once the others are done.
    """
    with report.timings.measure("diff"):
        work = owed_work(store, subscribers, today)
    pool = sorted(
        {p.uid: p for w in work.values() for p in w.candidates}.values(), key=lambda p: p.uid
    )
    with report.timings.measure("rank"):
        ranker = Ranker(store, today, pool)
    context = DeliveryContext(
        config=config, env=make_environment(templates_of(config)), store=store, now=clock()
    )
    waiting = list(subscribers)
    deadline = time.monotonic() + CLAIM_PATIENCE
    while waiting:
        held: list[SubscriberSettings] = []
        for start in range(0, len(waiting), BATCH):
            batch = waiting[start : start + BATCH]
            ranked = rank_batch(ranker, batch, work, report.timings)
            for number, subscriber in enumerate(batch, start=start + 1):
                progress(f"digests: {number} of {len(waiting)} ({subscriber.name})")
                with store.claim(subscriber.name) as mine:
                    if not mine:
                        held.append(subscriber)
                        continue
                    todo, ranking = work[subscriber.name], ranked.get(subscriber.name)
                    if store.postgres:  # another worker may have served it since we read
                        fresh = owed_work(store, [subscriber], today)[subscriber.name]
                        if [p.uid for p in fresh.candidates] != [p.uid for p in todo.candidates]:
                            ranking = None  # rank what it is owed now
                        todo = fresh
                    report.subscribers[subscriber.name] = serve_subscriber(
                        subscriber,
                        todo,
                        today,
                        store,
                        channels,
                        context,
                        ranker,
                        report.timings,
                        run_id=report.run_id,
                        ranked=ranking,
                    )
        waiting = held
        if waiting:
            if time.monotonic() > deadline:
                for subscriber in waiting:
                    report.subscribers[subscriber.name] = SubscriberReport(
                        error="another worker held this subscriber too long; served next run"
                    )
                return
            time.sleep(0.5)
            work.update(owed_work(store, waiting, today))


def rank_batch(
    ranker: Ranker,
    batch: Sequence[SubscriberSettings],
    work: dict[str, Work],
    timings: Timings,
) -> dict[str, tuple[Ranking, list[str]]]:
    """Rankings for a batch of subscribers, scored together. Should that fail (a bug),
    nothing is lost: each subscriber is then ranked on its own, and only the one it
    concerns fails."""
    with timings.measure("rank"):
        try:
            ranked = ranker.rank_many([(s, work[s.name].candidates) for s in batch])
        except Exception:
            log.exception(
                "ranking a batch of %d subscribers failed; ranking each alone", len(batch)
            )
            return {}
    return {s.name: found for s, found in zip(batch, ranked, strict=True)}
