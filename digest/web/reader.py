"""A reader's own pages: preferences (``/manage/<token>``) and leaving
(``/unsubscribe/<token>``).

A store reader edits its whole profile here, validated by the config's rules, and pauses
or resumes (resuming also brings back a reader who unsubscribed). A config reader's
profile is the admin's: shown, not editable; but it may unsubscribe and come back, which
the store keeps as an opt-out of its address. Unsubscribing is a POST from the page's
button, or RFC 8058's one-click POST from a mail provider, which gets a short 200 and
never a redirect; both are idempotent.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import Blueprint, Response, request

from digest.config import WeightedTerm
from digest.errors import SubscriberError
from digest.readers import email_key
from digest.web.forms import CHANNELS, FORM_ERROR, LIST_FIELDS, manage_form
from digest.web.security import is_one_click
from digest.web.site import (
    Who,
    config_allows,
    links,
    not_found,
    now,
    page,
    plain,
    reader_of,
    store,
)

pages = Blueprint("reader", __name__)

RESUMABLE = ("paused", "unsubscribed", "bouncing")


def _typed_of(who: Who) -> dict[str, str]:
    """The form's fields as the reader's settings fill them."""
    settings = who.settings
    typed = {key: "\n".join(_term_text(t) for t in getattr(settings, key)) for key in LIST_FIELDS}
    typed["max_papers"] = str(settings.max_papers)
    state = who.state
    if state is not None:
        typed |= {
            "cadence": state.cadence,
            "weekday": state.weekday or "",
            "timezone": state.timezone,
            "send_hour": str(state.send_hour),
        }
    return typed


def _term_text(term: str | WeightedTerm) -> str:
    """A keyword as the form shows it: a weighted one in the ``term^weight`` syntax."""
    return term if isinstance(term, str) else f"{term.term}^{term.weight:g}"


def _status(who: Who) -> str:
    if who.stored is not None:
        return who.stored.status
    return "unsubscribed" if email_key(who.settings.email) in store().opted_out() else "active"


def _manage_page(who: Who, status: int = 200, **values: object) -> Response:
    base = links().base_url
    token = f"?token={who.settings.feed_token}" if who.settings.feed_token else ""
    outputs = {
        "feed": f"{base}/feeds/{who.name}.atom{token}",
        "page": f"{base}/pages/{who.name}/{token}",
    }
    shown = {k: v for k, v in outputs.items() if k in who.settings.channels}
    defaults = {"typed": _typed_of(who), "errors": {}, "saved": False}
    reader_status = _status(who)
    return page(
        "manage",
        status,
        who=who,
        reader_status=reader_status,
        resumable=reader_status in RESUMABLE,
        outputs=shown,
        ratings_url=links().ratings(who.key),
        unsubscribe_url=links().unsubscribe(who.key),
        zones=sorted(available_timezones()),
        channels=CHANNELS,
        list_fields=LIST_FIELDS,
        **(defaults | values),
    )


@pages.get("/manage/<token>")
def manage_page(token: str) -> Response:
    found = reader_of(token, "manage")
    return not_found() if found is None else _manage_page(found[0])


@pages.post("/manage/<token>")
def manage(token: str) -> Response:
    found = reader_of(token, "manage")
    if found is None:
        return not_found()
    who = found[0]
    action = request.form.get("action", "save")
    if action in ("pause", "resume"):
        return _pause_or_resume(who, action)
    if who.stored is None:
        return _manage_page(who, 403, errors={FORM_ERROR: "managed by the site's admin"})
    parsed = manage_form(
        request.form, who.name, who.settings.email, who.stored.state, who.settings.channels
    )
    if not parsed.errors:
        try:
            store().update_subscriber(who.name, parsed.values, now(), check=config_allows)
        except SubscriberError as exc:
            parsed.errors[FORM_ERROR] = exc.message
    if parsed.errors:
        return _manage_page(who, 400, typed=parsed.typed, errors=parsed.errors)
    return _manage_page(_reloaded(who), saved=True)


def _pause_or_resume(who: Who, action: str) -> Response:
    status = _status(who)
    if who.stored is None:  # a config reader: comes back after unsubscribing, no more
        if action == "resume":
            store().opt_back_in(email_key(who.settings.email))
    elif action == "pause" and status == "active":
        store().set_status(who.name, "paused", now())
    elif action == "resume" and status in RESUMABLE:
        store().set_status(who.name, "active", now())
    return _manage_page(_reloaded(who), saved=True)


def _reloaded(who: Who) -> Who:
    """The reader as the store holds it after a change."""
    stored = store().get_subscriber(who.name) if who.stored is not None else None
    return Who(who.key, stored.settings, stored) if stored is not None else who


@pages.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Response:
    found = reader_of(token, "unsubscribe")
    return not_found() if found is None else page("unsubscribe", token=token)


@pages.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    found = reader_of(token, "unsubscribe")
    if found is None:
        return not_found()
    who = found[0]
    one_click = is_one_click()
    source = "one-click" if one_click else "page"
    if who.stored is None:
        store().opt_out(email_key(who.settings.email), "unsubscribed", source, now())
    elif who.stored.status != "unsubscribed":
        store().set_status(who.name, "unsubscribed", now())
    if one_click:
        return plain("unsubscribed", 200)
    return page("unsubscribed", manage_url=links().manage(who.key))
