"""Bounces: an address the mail server refuses for good, run after run, stops being sent to.

A permanent refusal of the recipient (5xx to RCPT) is counted once per run; a delivery the
server takes clears the count; a temporary one (4xx) never counts. When the count reaches
``[email] bounce_runs`` runs in a row the reader is marked bouncing: a store reader's
status becomes ``bouncing``, a config reader's address gets an opt-out (reason
``bouncing``). Either way later runs leave it out, so its pending deliveries are no
longer retried; setting the status back to active (or ``store.opt_back_in``) serves it
again, and one more refusal marks it again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from digest.config import Config, SubscriberSettings
from digest.errors import SubscriberError
from digest.readers import email_key
from digest.store import Store

log = logging.getLogger("digest")


def note_refusal(
    store: Store,
    config: Config,
    subscriber: SubscriberSettings,
    reply: str,
    run_id: int | None,
    now: datetime,
) -> str | None:
    """Count a refusal of the subscriber's address in this run; when it is the last one
    allowed, stop sending to it and return what the run report says of it."""
    bounce = store.record_bounce(email_key(subscriber.email), run_id, reply, now)
    limit = config.email.bounce_runs
    if bounce.runs < limit:
        return None
    stop_sending(store, config, subscriber, now)
    notice = (
        f"{subscriber.email} refused on {bounce.runs} runs in a row ([email] bounce_runs = "
        f"{limit}): marked bouncing, nothing more is sent to it"
    )
    log.warning("%s: %s", subscriber.name, notice)
    return notice


def stop_sending(
    store: Store, config: Config, subscriber: SubscriberSettings, now: datetime
) -> None:
    """Mark the reader bouncing: by status in the store, or by an opt-out of its address
    for a reader the config defines (the config file is not the store's to edit)."""
    if any(defined.name == subscriber.name for defined in config.subscribers):
        store.opt_out(email_key(subscriber.email), "bouncing", "smtp", now)
        return
    try:
        store.set_status(subscriber.name, "bouncing", now)
    except SubscriberError as exc:  # removed meanwhile: its address still must not get mail
        log.warning("%s: %s; opting its address out instead", subscriber.name, exc.message)
        store.opt_out(email_key(subscriber.email), "bouncing", "smtp", now)


def note_delivered(store: Store, subscriber: SubscriberSettings) -> None:
    """The server took a message for this address: its refusals no longer count."""
    store.clear_bounce(email_key(subscriber.email))
