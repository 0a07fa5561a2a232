"""Sign-up (``/subscribe``) and its confirmation (``/confirm/<token>``): double opt-in.

A valid form gets one answer, whatever the address is: new, pending, subscribed, a
config reader, unsubscribed, or mailed too often already. Only the mail that may follow
differs, and only its owner sees it: a confirmation link for a new, pending or
unsubscribed store reader (who becomes pending with the form's profile), the manage link
for a reader who is subscribed already (never changed by the form), nothing when the
address had its share of sign-up mails (``[web] mails_per_address_per_day``, at least
``mail_interval_minutes`` apart). Confirming is a POST: GET shows the button.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import available_timezones

from flask import Blueprint, Response, request

from digest.errors import SubscriberError
from digest.readers import PROFILE_FIELDS, STATE_FIELDS, config_reader, email_key
from digest.store.web import hashed
from digest.web.forms import signup_form
from digest.web.mailer import MailNotSent, send_one
from digest.web.mails import confirmation_mail, manage_mail
from digest.web.site import (
    Who,
    config_allows,
    links,
    not_found,
    now,
    page,
    reader_of,
    site,
    store,
)

log = logging.getLogger("digest")

signup_pages = Blueprint("signup", __name__)
confirm_pages = Blueprint("confirm", __name__)

SUBSCRIBED = ("active", "paused", "bouncing")  # readers the form never changes


def zones() -> list[str]:
    return sorted(available_timezones())


@signup_pages.get("/subscribe")
def subscribe_form() -> Response:
    zone = site().config.timezone
    return page("subscribe", typed={"timezone": zone}, errors={}, zones=zones())


@signup_pages.post("/subscribe")
def subscribe() -> Response:
    config = site().config
    parsed = signup_form(request.form, config.web.signup_domains, config.timezone)
    if parsed.errors:
        return page("subscribe", 400, typed=parsed.typed, errors=parsed.errors, zones=zones())
    try:
        _mail_the_address(parsed.values)
    except MailNotSent:
        return page("not_sent", 503)
    return page("sent")


def _mail_the_address(values: dict[str, object]) -> None:
    """Send the address the mail its state calls for, within its limits; else nothing."""
    config, at = site().config, now()
    address = str(values["email"])
    web = config.web
    if not store().claim_event(
        "mail",
        hashed(email_key(address)),
        at,
        limit=web.mails_per_address_per_day,
        per=timedelta(days=1),
        gap=timedelta(minutes=web.mail_interval_minutes),
    ):
        log.info("web: sign-up mail not sent: the address had its share of them")
        return
    subscribed = config_reader(config, address)
    stored = None if subscribed else store().get_subscriber(address)
    if stored is not None and stored.status in SUBSCRIBED:
        subscribed = stored.settings
    if subscribed is not None:  # never changed by the form: sent its manage link
        _send_manage_link(subscribed.email, subscribed.name)
        return
    changes = {f: None for f in (*PROFILE_FIELDS, *STATE_FIELDS)} | values
    try:
        if stored is None:
            stored = store().add_subscriber(changes, at, check=config_allows)
        else:  # pending (its profile replaced) or unsubscribed (signing up again)
            stored = store().update_subscriber(stored.name, changes, at, check=config_allows)
    except SubscriberError as exc:  # a reader stored meanwhile, or refused by the config
        log.warning("web: sign-up not stored: %s", exc)
        return
    key = store().reader_key(stored.name, at)
    expires = at + timedelta(hours=web.confirm_hours)
    message = confirmation_mail(
        site().env,
        config.email,
        stored.email,
        confirm_url=links().confirm(key, expires),
        expires=expires,
        site=links().base_url,
        now=at,
    )
    send_one(config, message, stored.email, at)


def _send_manage_link(address: str, name: str) -> None:
    key = store().reader_key(name, now())
    message = manage_mail(
        site().env,
        site().config.email,
        address,
        manage_url=links().manage(key),
        unsubscribe_url=links().unsubscribe(key),
        site=links().base_url,
        now=now(),
    )
    send_one(site().config, message, address, now())


def _confirmable(token: str) -> Who | None:
    """The store reader a confirmation link opens: pending, or active already (a link
    used twice). Any other (paused, unsubscribed...) is not brought back by an old link."""
    found = reader_of(token, "confirm")
    if found is None or found[0].stored is None:
        return None
    return found[0] if found[0].stored.status in ("pending", "active") else None


@confirm_pages.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    who = _confirmable(token)
    if who is None or who.stored is None:
        return not_found()
    return page("confirm", token=token, done=who.stored.status == "active")


@confirm_pages.post("/confirm/<token>")
def confirm(token: str) -> Response:
    who = _confirmable(token)
    if who is None or who.stored is None:
        return not_found()
    if who.stored.status == "pending":
        store().set_status(who.name, "active", now())
    return page("confirmed", manage_url=links().manage(who.key))
