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

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from jinja2 import Environment

from digest.channels import Channel, DeliveryContext, build_channels, close_channels
from digest.config import Config, SubscriberSettings
from digest.deliver import Work, owed_work, serve_subscriber
from digest.errors import DigestError
from digest.http import Http, Throttle
from digest.meaning import semantic_of
from digest.rank import Ranking
from digest.ranker import Ranker
from digest.readers import Audience, run_subscribers
from digest.render.environment import make_environment
from digest.report import RunReport, SourceReport, SubscriberReport, Timings, redactor_for
from digest.sources import FetchContext, Source, build_sources
from digest.store import Store
from digest.workers import ServeBatch, serve_in_workers, worker_count

log = logging.getLogger("digest")

Clock = Callable[[], datetime]
Progress = Callable[[str], None]

CLAIM_PATIENCE = 600.0  # seconds to wait for a subscriber another worker is serving
BATCH = 512  # subscribers ranked together
T = TypeVar("T")


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
    detail: bool = True,
    config_readers: bool = True,
) -> RunReport:
    """Run one digest: ingest, then diff, rank, render and deliver for every subscriber.

    Raises DigestError only when the run cannot start (store unusable, lock held);
    failures of single sources, subscribers or channels are in the report instead.
    ``http`` and ``progress`` default to the real HTTP layer and silence. ``detail``:
    keep each subscriber's chosen papers and their matches in the report (what ``--json``
    prints); a large run without it keeps only the counts. ``only``: just these
    subscribers, store readers whatever their schedule; ``config_readers`` False: only
    the store's readers that are due (the scheduler's wakes between its cron runs).
    """
    started = clock()
    today = today or digest_date(config, started)
    report = RunReport(date=today, dry_run=dry_run, detail=detail, redactor=redactor_for(config))
    own_http = http is None
    http = http or make_http(config)
    with open_store(config, dry_run=dry_run) as store:
        store.acquire_run(started)
        report.redactor = redactor_for(config, store)  # the store's readers' tokens too
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
            report.breakers = http.given_up()
            audience = run_subscribers(
                config, store, started, only=only or (), config_readers=config_readers
            )
            if audience.waiting:  # their first digest covers the papers since they joined
                store.register_subscribers(list(audience.waiting), today)
            chosen = audience.subscribers
            # Given channels (a test's) or a dry run's savepoint stay in this process.
            workers = 1 if channels or dry_run else worker_count(config.run.workers, len(chosen))
            if workers > 1:  # each worker process opens its own channels
                serve_all(config, audience, today, store, None, clock, report, progress, workers)
            else:
                channels = channels or build_channels(config, dry_run=dry_run)
                try:
                    serve_all(config, audience, today, store, channels, clock, report, progress)
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
    audience: Audience,
    today: date,
    store: Store,
    channels: dict[str, Channel] | None,
    clock: Clock,
    report: RunReport,
    progress: Progress,
    workers: int = 1,
) -> None:
    """Every subscriber's digest: read what each is owed, analyse the papers once, then
    serve them here, on ``channels``, or in ``workers`` processes that open their own
    channels (``channels`` None; see digest.workers)."""
    subscribers = audience.subscribers
    with few_collections():
        with report.timings.measure("diff"):
            work = owed_work(store, subscribers, today, audience.finish_only)
        pool = sorted(
            {p.uid: p for w in work.values() for p in w.candidates}.values(), key=lambda p: p.uid
        )
        with report.timings.measure("rank"):
            ranker = Ranker(
                store,
                today,
                pool,
                semantic_of(config),
                whole_digest=audience.weekly,
                keep_tastes_at=clock(),
            )
            owed = [(s, work[s.name].candidates) for s in subscribers]
            ranker.prepare(owed, workers)
        if ranker.semantic is not None:
            with report.timings.measure("encode"):  # semantic matching's vectors
                ranker.encode(owed)
        now = clock()
        env = make_environment(templates_of(config))
        served = Served(
            config,
            today,
            work,
            ranker,
            env,
            now,
            report.run_id,
            report.detail,
            audience.finish_only,
            audience.scheduled,
        )
        gc.freeze()  # what serving reads (papers, the analysis) is not rescanned, nor copied
        order = starting_place(subscribers, report.run_id) if store.postgres else subscribers
        _serve(served, order, store, channels, config, report, progress, workers)
    place = {s.name: k for k, s in enumerate(subscribers)}  # the report in config order
    report.subscribers = dict(
        sorted(report.subscribers.items(), key=lambda item: place.get(item[0], -1))
    )


def starting_place(subscribers: Sequence[T], run_id: int | None) -> list[T]:
    """The subscribers in the order this run serves them on a shared store: each run
    starts at its own place in the list (spread over run ids by the golden ratio), so
    that runs side by side serve different subscribers rather than queue for the same."""
    if not subscribers or run_id is None:
        return list(subscribers)
    start = int(len(subscribers) * (run_id * 0.6180339887498949 % 1.0))
    return [*subscribers[start:], *subscribers[:start]]


@contextmanager
def few_collections() -> Iterator[None]:
    """Ranking and serving make millions of small objects (terms, matches, views) that
    die within a digest; with the default thresholds the garbage collector would rescan
    the run's long-lived data (papers, the analysed corpus) thousands of times. Freeze
    what exists now (freeze again before forking workers: it also keeps them from copying
    its pages) and collect young objects less often; both are undone afterwards, for
    long-lived processes (schedule, serve)."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _serve(
    served: Served,
    subscribers: Sequence[SubscriberSettings],
    store: Store,
    channels: dict[str, Channel] | None,
    config: Config,
    report: RunReport,
    progress: Progress,
    workers: int,
) -> None:
    if channels is None:
        batches = [subscribers[k : k + BATCH] for k in range(0, len(subscribers), BATCH)]
        target = config.store.database_url or config.resolve(config.store.path)
        report.worker_timings = [Timings() for _ in range(max(workers, 1))]
        for found, timings, worker in serve_in_workers(
            max(workers, 1), batches, partial(served.session, target), progress
        ):
            report.subscribers.update(found)
            for stage, seconds in timings.items():
                report.timings.add(stage, seconds)
                report.worker_timings[worker].add(stage, seconds)
        return
    context = DeliveryContext(config=config, env=served.env, store=store, now=served.now)
    served.serve(
        subscribers,
        store,
        channels,
        context,
        report.subscribers.__setitem__,
        report.timings,
        progress,
    )


@dataclass(frozen=True)
class Served:
    """What serving subscribers needs, read once: in this process or in each worker."""

    config: Config
    today: date
    work: dict[str, Work]
    ranker: Ranker
    env: Environment
    now: datetime
    run_id: int | None
    detail: bool = True  # keep each subscriber's papers in its report
    finish_only: frozenset[str] = frozenset()  # not due: only unfinished deliveries
    scheduled: frozenset[str] = frozenset()  # store readers: record that they were served

    @contextmanager
    def session(self, target: str | Path) -> Iterator[ServeBatch]:
        """In a worker process: its own store connection and channels, for its batches."""
        with Store.open(target) as store:
            channels = build_channels(self.config)
            self.ranker.store = store  # this process's copy of the ranker
            context = DeliveryContext(config=self.config, env=self.env, store=store, now=self.now)

            def serve(
                batch: Sequence[SubscriberSettings],
                report: Callable[[str, SubscriberReport], None],
            ) -> Timings:
                timings = Timings()
                self.serve(batch, store, channels, context, report, timings, silent)
                return timings

            try:
                yield serve
            finally:
                close_channels(channels)

    def serve(
        self,
        subscribers: Sequence[SubscriberSettings],
        store: Store,
        channels: dict[str, Channel],
        context: DeliveryContext,
        report: Callable[[str, SubscriberReport], None],
        timings: Timings,
        progress: Progress,
    ) -> None:
        """Rank a batch at a time, then record and deliver each subscriber it has claimed.

        On PostgreSQL another worker may hold a subscriber: it is left for later, and tried
        again once the others are done.
        """
        waiting = list(subscribers)
        deadline = time.monotonic() + CLAIM_PATIENCE
        while waiting:
            held: list[SubscriberSettings] = []
            for start in range(0, len(waiting), BATCH):
                batch = waiting[start : start + BATCH]
                if store.postgres:  # not ranking again what another run has served since
                    self.refresh(batch, store)
                ranked = rank_batch(self.ranker, batch, self.work, timings)
                self.mark_idle_served(batch, store)
                context.prepare_links([s.name for s in batch])  # one query a batch
                for number, subscriber in enumerate(batch, start=start + 1):
                    progress(f"digests: {number} of {len(waiting)} ({subscriber.name})")
                    with store.claim(subscriber.name) as mine:
                        if not mine:
                            held.append(subscriber)
                            continue
                        report(
                            subscriber.name,
                            self.serve_one(subscriber, store, channels, context, timings, ranked),
                        )
            waiting = held
            if waiting:
                if time.monotonic() > deadline:
                    for subscriber in waiting:
                        report(
                            subscriber.name,
                            SubscriberReport(
                                error="another worker held this subscriber too long; "
                                "served next run"
                            ),
                        )
                    return
                time.sleep(0.5)
                self.work.update(owed_work(store, waiting, self.today, self.finish_only))

    def mark_idle_served(self, batch: Sequence[SubscriberSettings], store: Store) -> None:
        """Record as served, in one write, the scheduled readers of ``batch`` owed no new
        paper: their period is done. Those with a digest are marked as it is recorded."""
        idle = [
            s.name for s in batch if s.name in self.scheduled and not self.work[s.name].candidates
        ]
        store.mark_served(idle, self.now)

    def refresh(self, batch: Sequence[SubscriberSettings], store: Store) -> None:
        """Re-read what the subscribers of ``batch`` are owed where another run has made
        a digest for them since this run read it."""
        marks = store.watermarks_of([s.name for s in batch])
        moved = [s for s in batch if marks.get(s.name) != self.work[s.name].watermark]
        if moved:
            self.work.update(owed_work(store, moved, self.today, self.finish_only))

    def serve_one(
        self,
        subscriber: SubscriberSettings,
        store: Store,
        channels: dict[str, Channel],
        context: DeliveryContext,
        timings: Timings,
        ranked: dict[str, tuple[Ranking, list[str]]],
    ) -> SubscriberReport:
        todo, ranking = self.work[subscriber.name], ranked.get(subscriber.name)
        if store.postgres:  # another worker may have served it since we read
            if store.watermark_of(subscriber.name) != todo.watermark:
                fresh = owed_work(store, [subscriber], self.today, self.finish_only)[
                    subscriber.name
                ]
                if [p.uid for p in fresh.candidates] != [p.uid for p in todo.candidates]:
                    ranking = None  # rank what it is owed now
                todo = fresh
            elif todo.unconfirmed:  # deliveries another worker may have finished
                todo = replace(todo, unconfirmed=store.pending_deliveries(subscriber.name))
        return serve_subscriber(
            subscriber,
            todo,
            self.today,
            store,
            channels,
            context,
            self.ranker,
            timings,
            run_id=self.run_id,
            ranked=ranking,
            detail=self.detail,
            mark_served=subscriber.name in self.scheduled,
        )


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
