"""The reader pages' forms: what a posted field may hold, and a reader's values from it.

Pure: a form's fields (strings) in, the values ``digest.readers.validate_reader`` takes
and the problems per field out. Every field has a length limit, checked before anything
else reads it, and a list field (keywords, one a line) a limit on its lines; the rules
of what a keyword, an address or a zone may be are the config's own, applied by
``validate_reader``, whose problems are put next to the field they are about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from digest.errors import SubscriberError
from digest.readers import ReaderState, validate_reader

MAX_ADDRESS = 254  # RFC 5321's longest path
MAX_LIST_CHARS = 2000
MAX_TERMS = 50
MAX_SHORT = 64  # a zone name, a cadence, a number
LIST_FIELDS = ("keywords", "exclude", "authors", "categories")
CHANNELS = ("email", "feed", "page")
FORM_ERROR = "form"  # problems about no one field
# A new reader's name is made when it is stored; its form is checked with a stand-in.
STAND_IN_NAME = "r-000000000000"


@dataclass(slots=True)
class Parsed:
    """A form read: the reader's values, the problems per field, and what was typed (to
    show again in the form)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)


def _short(parsed: Parsed, form: Mapping[str, str], name: str, limit: int = MAX_SHORT) -> str:
    value = form.get(name, "").strip()
    parsed.typed[name] = value[:limit]
    if len(value) > limit:
        parsed.errors[name] = f"at most {limit} characters"
        return ""
    return value


def _terms(parsed: Parsed, form: Mapping[str, str], name: str) -> list[str] | None:
    value = form.get(name, "")
    parsed.typed[name] = value[:MAX_LIST_CHARS]
    if len(value) > MAX_LIST_CHARS:
        parsed.errors[name] = f"at most {MAX_LIST_CHARS} characters"
        return None
    terms = [line.strip() for line in value.splitlines() if line.strip()]
    if len(terms) > MAX_TERMS:
        parsed.errors[name] = f"at most {MAX_TERMS} lines, got {len(terms)}"
        return None
    return terms


def _schedule(parsed: Parsed, form: Mapping[str, str]) -> None:
    cadence = _short(parsed, form, "cadence") or "daily"
    weekday = _short(parsed, form, "weekday")
    parsed.values["cadence"] = cadence
    parsed.values["weekday"] = weekday if cadence == "weekly" and weekday else None
    timezone = _short(parsed, form, "timezone")
    if timezone:
        parsed.values["timezone"] = timezone


def signup_form(form: Mapping[str, str], domains: tuple[str, ...], default_zone: str) -> Parsed:
    """The sign-up form: address, keywords, and optionally cadence, weekday, time zone.
    The reader starts pending, with the email channel only."""
    parsed = Parsed()
    address = _short(parsed, form, "email", MAX_ADDRESS)
    keywords = _terms(parsed, form, "keywords")
    _schedule(parsed, form)
    parsed.values.setdefault("timezone", default_zone)
    parsed.values |= {"email": address, "keywords": keywords or [], "status": "pending"}
    parsed.values["channels"] = ["email"]
    if not address and "email" not in parsed.errors:
        parsed.errors["email"] = "required"
    _validate(parsed, {"name": STAND_IN_NAME})
    if "email" not in parsed.errors and domains and not in_domains(address, domains):
        parsed.errors["email"] = "sign-up is open to addresses in " + ", ".join(
            f"@{d}" for d in domains
        )
    return parsed


def manage_form(
    form: Mapping[str, Any],
    name: str,
    email: str,
    state: ReaderState,
    kept_channels: Sequence[str] = (),
) -> Parsed:
    """The preferences form of reader ``name``: its whole profile as the page edits it
    (the status is changed by the pause and resume buttons, not here).

    ``kept_channels``: the reader's channels the form does not offer (markdown, set by
    the admin or an import); saving keeps them, as it cannot show or change them."""
    parsed = Parsed()
    for key in LIST_FIELDS:
        terms = _terms(parsed, form, key)
        if terms is not None:
            parsed.values[key] = terms
    max_papers = _short(parsed, form, "max_papers")
    if max_papers:
        parsed.values["max_papers"] = max_papers
    _schedule(parsed, form)
    send_hour = _short(parsed, form, "send_hour")
    if send_hour:
        parsed.values["send_hour"] = send_hour
    channels = [c for c in _list(form, "channels") if c in CHANNELS]
    parsed.values["channels"] = [*channels, *(c for c in kept_channels if c not in CHANNELS)]
    parsed.typed["channels"] = ",".join(channels)
    if not parsed.values["channels"]:
        parsed.errors["channels"] = "choose at least one (email, feed or page)"
    _validate(parsed, {"name": name, "email": email, "status": state.status})
    return parsed


def _list(form: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if getlist else [form.get(name, "")]
    return [str(v)[:MAX_SHORT] for v in values[: len(CHANNELS) + 1]]


def _validate(parsed: Parsed, fixed: Mapping[str, Any]) -> None:
    """Check the whole reader by the config's rules; put each problem by its field."""
    if parsed.errors:
        return
    try:
        validate_reader(parsed.values | dict(fixed))
    except SubscriberError as exc:
        for problem in exc.problems:
            where, _, message = problem.partition(": ")
            key, _, index = where.partition(".")
            if key == "(reader)":
                key = "weekday" if "weekday" in message else FORM_ERROR
            if index.split(".")[0].isdigit():
                message = f"line {int(index.split('.')[0]) + 1}: {message}"
            parsed.errors.setdefault(key if key in parsed.typed else FORM_ERROR, message)


def in_domains(address: str, domains: tuple[str, ...]) -> bool:
    """Whether the address is in one of ``domains`` or a subdomain of one."""
    host = address.rpartition("@")[2].strip().lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)
