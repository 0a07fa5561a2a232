"""One subscriber's part of a run: rank what it is owed, record the digest, deliver it.

Also finishes the deliveries of earlier digests that a channel did not confirm (a crash,
a mail server that said "try later"), before or beside today's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

from digest.bounces import note_delivered, note_refusal
from digest.channels import Channel, DeliveryContext
from digest.config import SubscriberSettings
from digest.errors import DeliveryDeferred, DeliveryUnknown, DigestError, RecipientRefused
from digest.models import Digest, Scored, StoredPaper
from digest.rank import Ranking
from digest.ranker import Ranker
from digest.report import DeliveryReport, SubscriberReport, Timings
from digest.store import PendingDelivery, Store

log = logging.getLogger("digest")


@dataclass(slots=True)
class Work:
    """What one subscriber is owed in this run: new papers, and unconfirmed deliveries."""

    candidates: list[StoredPaper]
    unconfirmed: list[PendingDelivery] = field(default_factory=list)
    watermark: int | None = None  # how far its digests reached when this was read


def serve_subscriber(
    subscriber: SubscriberSettings,
    work: Work,
    today: date,
    store: Store,
    channels: dict[str, Channel],
    context: DeliveryContext,
    ranker: Ranker,
    timings: Timings,
    *,
    run_id: int | None = None,
    ranked: tuple[Ranking, list[str]] | None = None,
    detail: bool = True,
    mark_served: bool = False,
) -> SubscriberReport:
    """Rank (unless ``ranked`` already is), record and deliver one subscriber's digest;
    never raises. ``mark_served``: record that the reader was served (its cadence's
    period is done) with its digest, before delivering: unfinished deliveries are
    finished by later runs whether or not it is due. (A reader owed nothing is marked by
    the caller, a batch at a time.)"""
    entry = SubscriberReport()
    try:
        if ranked is None:
            with timings.measure("rank"):
                ranked = ranker.rank(subscriber, work.candidates)
        ranking, entry.warnings = ranked
        entry.candidates = len(work.candidates)
        entry.selected = len(ranking.selected)
        entry.papers = paper_summaries(ranking) if detail else []
        todo: dict[int, tuple[Digest | None, list[str]]] = {}
        for pending in work.unconfirmed:
            todo.setdefault(pending.digest_id, (None, []))[1].append(pending.channel)
        if work.candidates:
            parts = email_parts(subscriber, today, ranking, work, context, timings)
            with timings.measure("record"):
                recorded = store.create_digests(
                    subscriber.name,
                    today,
                    parts,
                    work.candidates,
                    subscriber.channels,
                    run_id,
                    context.now,
                    served=mark_served,
                )
            for digest in recorded:
                if digest.papers and digest.digest_id is not None:
                    todo[digest.digest_id] = (digest, list(subscriber.channels))
        deliver(subscriber, todo, store, channels, context, entry, timings, run_id)
    except Exception as exc:
        entry.error = f"{exc}" if isinstance(exc, DigestError) else f"unexpected error: {exc!r}"
        log.exception("subscriber %s failed", subscriber.name)
    return entry


def email_parts(
    subscriber: SubscriberSettings,
    today: date,
    ranking: Ranking,
    work: Work,
    context: DeliveryContext,
    timings: Timings,
) -> list[tuple[Scored, ...]]:
    """The chosen papers as the digests to record: one, or for an email reader whose
    digest would pass the clipping limit, as many as its emails need (each recorded and
    confirmed on its own), so that every paper recorded as sent is one its reader sees."""
    selected = tuple(ranking.selected)
    if "email" not in subscriber.channels or len(selected) < 2:
        return [selected]
    # Measured as the email it will be: the first digest of the day, unless one was made
    # already (then only the slug differs, and the limit leaves room for it).
    draft = Digest(subscriber.name, today, 1, selected, len(work.candidates))
    with timings.measure("deliver:email"):
        return context.email_parts(draft, subscriber)


def deliver(
    subscriber: SubscriberSettings,
    todo: dict[int, tuple[Digest | None, list[str]]],
    store: Store,
    channels: dict[str, Channel],
    context: DeliveryContext,
    entry: SubscriberReport,
    timings: Timings,
    run_id: int | None = None,
) -> None:
    """Deliver each digest on each channel still owed; record what each channel confirmed."""
    errors: list[str] = []
    for digest_id, (known, names) in todo.items():
        digest = known or store.load_digest(digest_id)
        complete = True
        for name in names:
            complete = (
                _deliver_one(
                    digest,
                    name,
                    subscriber,
                    store,
                    channels,
                    context,
                    entry,
                    errors,
                    timings,
                    run_id,
                )
                and complete
            )
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
    timings: Timings,
    run_id: int | None = None,
) -> bool:
    channel = channels.get(name)
    started = time.perf_counter()
    try:
        if channel is None:
            raise DigestError(f"no channel named {name!r}")
        where = channel.deliver(digest, subscriber, context)
    except (DeliveryUnknown, DeliveryDeferred) as exc:
        with timings.measure("record"):
            status = _record_unfinished(store, digest.digest_id or 0, name, exc)
        entry.deliveries.append(DeliveryReport(digest.slug, name, status, exc.message))
        errors.append(f"{name} delivery of {digest.slug} {status}: {exc}")
        log.error("%s: %s delivery of %s %s: %s", subscriber.name, name, digest.slug, status, exc)
        return False
    except Exception as exc:  # a channel failure stays pending; the others go on
        reason = str(exc) if isinstance(exc, DigestError | OSError) else repr(exc)
        reason = context.redactor.text(reason)  # a server may echo a secret
        with timings.measure("record"):
            store.mark_failed(digest.digest_id or 0, name, reason)
            if isinstance(exc, RecipientRefused):  # a bounce: after some runs, no more mail
                notice = note_refusal(
                    store, context.config, subscriber, reason, run_id, context.now
                )
                reason = f"{reason}; {notice}" if notice else reason
        entry.deliveries.append(DeliveryReport(digest.slug, name, "failed", reason))
        errors.append(f"{name} delivery of {digest.slug} failed: {reason}")
        log.error("%s: %s delivery of %s failed: %s", subscriber.name, name, digest.slug, reason)
        return False
    finally:
        timings.add(f"deliver:{name}", time.perf_counter() - started)
    with timings.measure("record"):
        store.mark_delivered(digest.digest_id or 0, name, context.now)
        if name == "email":
            note_delivered(store, subscriber)
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


def _record_unfinished(
    store: Store, digest_id: int, channel: str, exc: DeliveryUnknown | DeliveryDeferred
) -> str:
    """Record a delivery that neither failed nor succeeded; return its status for the
    report. A copy sent without confirmation is "unknown" (or, the second time,
    "unconfirmed"); a delivery the channel did not even try stays as it was, pending."""
    if isinstance(exc, DeliveryUnknown):
        return store.mark_unknown(digest_id, channel, exc.message)
    return "pending"


def paper_summaries(ranking: Ranking) -> list[dict[str, object]]:
    """The selected papers as the JSON report lists them, in digest order (matches are
    kept as they are, and written out as objects by RunReport.to_json)."""
    return [
        {
            "id": item.paper.paper.ref,
            "title": item.paper.paper.title,
            "score": item.score,
            "section": item.section,
            "matched": item.matches,
        }
        for item in ranking.selected
    ]


def owed_work(
    store: Store,
    subscribers: Sequence[SubscriberSettings],
    today: date,
    finish_only: Collection[str] = (),
) -> dict[str, Work]:
    """What each subscriber is owed, read for all of them at once. Those in
    ``finish_only`` (readers whose send moment has not come) are owed only their
    unfinished deliveries, no new papers."""
    names = [s.name for s in subscribers]
    owed = store.register_subscribers(names, today)
    reading = {n: o for n, o in owed.items() if n not in finish_only} if finish_only else owed
    backfill = {s.name: s.backfill_days for s in subscribers}
    pending = store.pending_for(reading, today, backfill)
    unconfirmed = store.pending_deliveries_of(names)
    return {
        s.name: Work(
            pending.for_subscriber(s.name, owed[s.name], today, s.backfill_days)
            if s.name in reading
            else [],
            unconfirmed.get(s.name, []),
            owed[s.name].watermark,
        )
        for s in subscribers
    }
