"""Readers kept in the store (added by the command line, later by sign-up pages), and who a
run serves: the config's ``[[subscribers]]`` plus the store's active readers.

A store-managed reader is validated by building the very ``SubscriberSettings`` a
config-managed one is, so every rule (keyword syntax, categories, addresses, limits) is
the same; on top of it come its status and its delivery schedule (cadence, time zone,
send hour): a run serves a store reader only once its send moment has come
(``digest.cadence``).

Clashes: the config wins. A store reader with the name or the address of a config reader
is left out of runs (with a warning), and the command line refuses to create or edit one.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digest.cadence import is_due
from digest.config import Config, SubscriberSettings, ZoneName
from digest.errors import SubscriberError

if TYPE_CHECKING:
    from digest.store import Store

log = logging.getLogger("digest")

Status = Literal["pending", "active", "paused", "unsubscribed", "bouncing"]
STATUSES: tuple[str, ...] = ("pending", "active", "paused", "unsubscribed", "bouncing")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Fields of SubscriberSettings stored as the reader's profile (JSON); the others are columns.
IDENTITY_FIELDS = ("name", "email", "channels", "feed_token")
PROFILE_FIELDS = tuple(f for f in SubscriberSettings.model_fields if f not in IDENTITY_FIELDS)
STATE_FIELDS = ("status", "cadence", "weekday", "timezone", "send_hour")
FIELDS = (*IDENTITY_FIELDS, *STATE_FIELDS, *PROFILE_FIELDS)  # what import and export know


class ReaderState(BaseModel):
    """What a store reader has beyond a config subscriber: status and delivery schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    status: Status = Field("active", description="Only active readers are served by a run.")
    cadence: Literal["daily", "weekly"] = Field("daily", description="How often a digest goes.")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = Field(
        None, description="The day of a weekly digest."
    )
    timezone: ZoneName = Field("UTC", description="IANA zone the send hour is read in.")
    send_hour: int = Field(7, ge=0, le=23, description="Local hour the digest is sent at.")

    @field_validator("weekday", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value

    @property
    def budget_is_whole_digest(self) -> bool:
        """Whether ``max_papers`` is for the whole digest however many listing days it
        covers: a weekly digest is the best of the week, not seven days' worth."""
        return self.cadence == "weekly"

    @model_validator(mode="after")
    def _weekly_has_a_day(self) -> ReaderState:
        if self.cadence == "weekly" and self.weekday is None:
            raise ValueError("cadence weekly needs weekday (mon, tue, ... sun)")
        if self.cadence == "daily" and self.weekday is not None:
            raise ValueError("weekday is only for cadence weekly")
        return self


@dataclass(frozen=True, slots=True)
class Reader:
    """A store-managed reader: what a run serves (``settings``) and its state."""

    settings: SubscriberSettings
    state: ReaderState
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def email(self) -> str:
        return self.settings.email

    @property
    def status(self) -> str:
        return self.state.status

    def fields(self) -> dict[str, Any]:
        """Everything import reads, as JSON-ready values, defaults left out."""
        values = self.settings.model_dump(mode="json", exclude_defaults=True)
        values.update(self.state.model_dump(mode="json", exclude_defaults=True))
        values["name"], values["email"] = self.name, self.email
        values["status"] = self.status
        return {key: values[key] for key in FIELDS if key in values}

    def to_json(self) -> dict[str, Any]:
        """``fields()`` with the timestamps, for ``list --json`` and ``show --json``."""
        stamps = {
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "confirmed_at": self.confirmed_at,
            "unsubscribed_at": self.unsubscribed_at,
        }
        return self.fields() | {k: v.isoformat() if v else None for k, v in stamps.items()}


def new_reader_name() -> str:
    """A stable, opaque name for a reader added without one. Names appear in file names and
    URLs, so they never carry the address."""
    return "r-" + secrets.token_hex(6)


def email_key(address: str) -> str:
    """The form two spellings of one address share (Unicode NFC, case folded), so a
    reader is found, and imported, by address whatever its capitalisation. Cheap on
    purpose: an import computes it for every row, and the address is validated once,
    as the reader is."""
    return unicodedata.normalize("NFC", address.strip()).casefold()


def validate_reader(values: Mapping[str, Any]) -> tuple[SubscriberSettings, ReaderState]:
    """A reader's settings and state from plain values, or a SubscriberError listing every
    problem as ``key: what was expected``."""
    values = {key: value for key, value in values.items() if value is not None}  # defaults
    unknown = sorted(set(values) - set(FIELDS))
    problems = [f"{key}: unknown field; known: {', '.join(FIELDS)}" for key in unknown]
    settings = state = None
    subscriber = {k: v for k, v in values.items() if k in SubscriberSettings.model_fields}
    try:
        settings = SubscriberSettings.model_validate(subscriber)
    except ValidationError as exc:
        problems += describe_errors(exc)
    try:
        state = ReaderState.model_validate({k: v for k, v in values.items() if k in STATE_FIELDS})
    except ValidationError as exc:
        problems += describe_errors(exc)
    if problems or settings is None or state is None:
        raise SubscriberError("; ".join(problems), problems=problems)
    return settings, state


_PLAIN = {
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "string_type": "expected text",
    "model_type": "expected an object",
}


def describe_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors as ``key: what was expected, got VALUE``, one per problem."""
    found = []
    errors = exc.errors()
    # A list whose items failed also reports being too short: say only the cause.
    failed = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
    for error in errors:
        if error["type"] == "too_short" and error["loc"] in failed:
            continue
        key = ".".join(str(part) for part in error["loc"]) or "(reader)"
        kind = error["type"]
        if kind == "missing":
            found.append(f"{key}: required")
            continue
        message = _PLAIN.get(kind) or str(error["msg"]).removeprefix("Value error, ")
        message = message.replace("Input should be", "expected")
        message = message.replace("String should", "expected to")
        if kind != "value_error" and "got" not in message:
            message = f"{message}, got {error.get('input')!r}"
        found.append(f"{key}: {message}")
    return found


def check_against_config(settings: SubscriberSettings, config: Config) -> list[str]:
    """What a store reader may not be, given the config: one of its readers, or a reader
    of sources it does not define."""
    problems = []
    for defined in config.subscribers:
        if defined.name == settings.name:
            problems.append(f"name: {settings.name!r} is defined in {config.path}; edit it there")
        elif email_key(defined.email) == email_key(settings.email):
            problems.append(
                f"email: {settings.email} is subscriber {defined.name!r} in {config.path}; "
                "edit it there"
            )
    known = {source.name for source in config.sources}
    unknown = sorted(set(settings.sources) - known)
    if unknown:
        problems.append(
            f"sources: {', '.join(unknown)} not defined in [[sources]] of {config.path} "
            f"(defined: {', '.join(sorted(known))})"
        )
    return problems


def config_reader(config: Config, ref: str) -> SubscriberSettings | None:
    """The config's subscriber with this name or address, if any."""
    key = email_key(ref) if "@" in ref else None
    for defined in config.subscribers:
        if defined.name == ref or (key and email_key(defined.email) == key):
            return defined
    return None


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a run serves, and how.

    ``subscribers``: the config's readers (every run is theirs: the cron line is their
    schedule) and the store's active readers whose send moment has come, or that are
    owed deliveries never tried or never confirmed (``UNTRIED``). ``finish_only``: store
    readers not due, given those deliveries (and any failed one) but no new digest.
    ``scheduled``: store readers served on their schedule (a run records when it served
    them). ``weekly``: readers whose ``max_papers`` is for the whole digest.
    ``waiting``: active store readers not due, registered so that their first digest
    covers the papers since they joined.
    """

    subscribers: list[SubscriberSettings]
    finish_only: frozenset[str] = frozenset()
    scheduled: frozenset[str] = frozenset()
    weekly: frozenset[str] = frozenset()
    waiting: tuple[str, ...] = ()


# What a reader that is not due is still run for: deliveries never tried (a crash, a
# server the run gave up on) or sent without a confirmation. A delivery the server
# refused waits for the reader's next digest, so it costs no run at every wake.
UNTRIED = ("pending", "unknown")
OPT_OUTS_NAMED = 10  # up to this many opted-out readers are logged by name, beyond: a count


def run_subscribers(
    config: Config,
    store: Store,
    now: datetime,
    *,
    only: Collection[str] = (),
    config_readers: bool = True,
) -> Audience:
    """Who a run at ``now`` serves: the config's subscribers, in config order, except
    those whose address opted out (unsubscribed, or bouncing); then the store's active
    readers that are due (see digest.cadence), in the order they were added, that clash
    with none of them. Readers pending, paused, unsubscribed or bouncing are not served,
    from the next run on. ``only``: just these readers, store readers whatever their
    schedule. ``config_readers`` False: the store's readers alone (the scheduler's wakes
    between cron runs)."""
    wanted = set(only)
    served = _config_readers(config, store, wanted, config_readers)
    active = _store_readers(config, store, wanted)
    names = [r.name for r in active]
    last_served = store.served_times(names)
    unfinished = {
        name
        for name, deliveries in store.pending_deliveries_of(names).items()
        if any(d.status in UNTRIED for d in deliveries)
    }
    finish_only, scheduled, waiting = set(), set(), []
    for reader in active:
        since = reader.confirmed_at or reader.created_at
        if reader.name in wanted or is_due(reader.state, last_served.get(reader.name), since, now):
            scheduled.add(reader.name)
        elif reader.name in unfinished:
            finish_only.add(reader.name)
        else:
            waiting.append(reader.name)
            continue
        served.append(reader.settings)
    weekly = {r.name for r in active if r.state.budget_is_whole_digest}
    return Audience(
        served, frozenset(finish_only), frozenset(scheduled), frozenset(weekly), tuple(waiting)
    )


def _store_readers(config: Config, store: Store, wanted: set[str]) -> list[Reader]:
    """The store's active readers (or those ``wanted``) that clash with no config
    reader nor with each other; each one left out is logged with why."""
    taken = {s.name for s in config.subscribers}
    addresses = {email_key(s.email) for s in config.subscribers}
    found = []
    for reader in store.list_subscribers(status="active"):
        if wanted and reader.name not in wanted:
            continue
        problems = check_against_config(reader.settings, config)
        if not problems and (reader.name in taken or email_key(reader.email) in addresses):
            problems = ["a reader of the same name or address is served already"]
        if problems:
            log.warning("store reader %s not served: %s", reader.name, "; ".join(problems))
            continue
        found.append(reader)
        taken.add(reader.name)
        addresses.add(email_key(reader.email))
    return found


def _config_readers(
    config: Config, store: Store, wanted: set[str], included: bool
) -> list[SubscriberSettings]:
    """The config's readers a run serves: all of them (or those ``wanted``), except
    those whose address opted out, each said once in the log."""
    chosen = [s for s in config.subscribers if (s.name in wanted if wanted else included)]
    opted = store.opted_out() if chosen else {}
    left_out = [s for s in chosen if email_key(s.email) in opted]
    if len(left_out) > OPT_OUTS_NAMED:
        log.info("%d config readers not served: their addresses opted out", len(left_out))
    else:
        for s in left_out:
            log.info(
                "config reader %s not served: its address opted out (%s)",
                s.name,
                opted[email_key(s.email)],
            )
    out = {s.name for s in left_out}
    return [s for s in chosen if s.name not in out]


def stamped(
    old: Reader | None, settings: SubscriberSettings, state: ReaderState, now: datetime
) -> Reader:
    """The reader with its timestamps after a change: confirmed the first time it becomes
    active, unsubscribed_at while (and since when) it is unsubscribed."""
    confirmed = old.confirmed_at if old else None
    if state.status == "active" and confirmed is None:
        confirmed = now
    unsubscribed = None
    if state.status == "unsubscribed":
        still = old is not None and old.status == "unsubscribed"
        unsubscribed = old.unsubscribed_at if old is not None and still else now
    return Reader(
        settings=settings,
        state=state,
        created_at=old.created_at if old else now,
        updated_at=now,
        confirmed_at=confirmed,
        unsubscribed_at=unsubscribed,
    )


def named(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values with a fresh opaque name where none is given."""
    result = dict(values)
    if not result.get("name"):
        result["name"] = new_reader_name()
    return result


def merged(old: Reader, changes: Mapping[str, Any]) -> dict[str, Any]:
    """A reader's fields with ``changes`` applied (a None value resets a field to its
    default); the name and address stay unless changed on purpose."""
    values = old.fields()
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values
