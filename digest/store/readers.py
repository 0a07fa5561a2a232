"""Readers managed in the store: add, find, list, change, remove, and import in bulk.

Every write validates the whole reader (``digest.readers.validate_reader``), so what is
stored always loads; a row that a later version's rules refuse is reported by name and
left out of runs rather than failing them. A reader is found by name or by address (any
capitalisation); one address is one reader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.errors import SubscriberError
from digest.readers import (
    PROFILE_FIELDS,
    STATUSES,
    Reader,
    email_key,
    merged,
    named,
    stamped,
    validate_reader,
)
from digest.store.base import CHUNK, StoreBase
from digest.store.schema import readers

log = logging.getLogger("digest")

Check = Callable[[Reader], list[str]]  # more rules a caller adds (the config's)


@dataclass(slots=True)
class ImportResult:
    """What an import did: readers added and updated, and each bad row (its index in the
    rows given, and ``key: what was expected``). Nothing is written when a row is bad,
    unless bad rows are skipped."""

    added: int = 0
    updated: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    written: bool = False


def _row_of(reader: Reader) -> dict[str, Any]:
    profile = reader.settings.model_dump(mode="json", include=set(PROFILE_FIELDS))
    state = reader.state
    return {
        "name": reader.name,
        "email": reader.email,
        "email_key": email_key(reader.email),
        "status": state.status,
        "profile": json.dumps(profile, ensure_ascii=False, sort_keys=True),
        "channels": json.dumps(list(reader.settings.channels)),
        "cadence": state.cadence,
        "weekday": state.weekday,
        "timezone": state.timezone,
        "send_hour": state.send_hour,
        "feed_token": reader.settings.feed_token,
        "created_at": reader.created_at,
        "updated_at": reader.updated_at,
        "confirmed_at": reader.confirmed_at,
        "unsubscribed_at": reader.unsubscribed_at,
    }


def _reader_of(row: Any) -> Reader:
    values = json.loads(row.profile) | {
        "name": row.name,
        "email": row.email,
        "channels": json.loads(row.channels),
        "feed_token": row.feed_token,
        "status": row.status,
        "cadence": row.cadence,
        "weekday": row.weekday,
        "timezone": row.timezone,
        "send_hour": row.send_hour,
    }
    try:
        settings, state = validate_reader(values)
    except SubscriberError as exc:
        raise SubscriberError(
            f"store reader {row.name}: its stored details no longer validate: {exc.message}",
            hint="it is left out of runs until its row in the store's readers table is fixed",
        ) from None
    return Reader(
        settings, state, row.created_at, row.updated_at, row.confirmed_at, row.unsubscribed_at
    )


@contextmanager
def _same_reader_meanwhile() -> Iterator[None]:
    """Another process may add a reader of the same name or address between our check and
    our write (several hosts on one PostgreSQL store): say so, rather than a traceback."""
    try:
        yield
    except IntegrityError:
        raise SubscriberError(
            "another process stored a reader of the same name or address meanwhile; "
            "nothing was written",
            hint="run the command again: it now sees that reader",
        ) from None


class ReadersMixin(StoreBase):
    # --- one reader -------------------------------------------------------------------------

    def add_subscriber(
        self, values: Mapping[str, Any], now: datetime, *, check: Check | None = None
    ) -> Reader:
        """Store a new reader (a name is made up if none is given); SubscriberError if it
        is invalid, or its name or address is taken."""
        settings, state = validate_reader(named(values))
        reader = stamped(None, settings, state, now)
        self._refuse(reader, check)
        with self.transaction() as conn:
            if self.get_subscriber(reader.email) is not None:
                raise SubscriberError(f"email: {reader.email} is a reader already")
            if self.get_subscriber(reader.name) is not None:
                raise SubscriberError(f"name: {reader.name!r} is taken by another reader")
            with _same_reader_meanwhile():
                conn.execute(insert(readers).values(**_row_of(reader)))
        return reader

    def get_subscriber(self, ref: str) -> Reader | None:
        """The reader with this name, or this address (any capitalisation)."""
        column, key = (readers.c.email_key, email_key(ref)) if "@" in ref else (readers.c.name, ref)
        row = self.conn.execute(select(readers).where(column == key)).first()
        return _reader_of(row) if row is not None else None

    def update_subscriber(
        self,
        ref: str,
        changes: Mapping[str, Any],
        now: datetime,
        *,
        check: Check | None = None,
    ) -> Reader:
        """Apply ``changes`` (field: value; None resets to the default) and validate the
        whole reader again; SubscriberError if it is unknown or the result is invalid."""
        with self.transaction() as conn:
            old = self._known(ref)
            settings, state = validate_reader(merged(old, changes))
            reader = stamped(old, settings, state, now)
            self._refuse(reader, check)
            if reader.email != old.email:
                other = self.get_subscriber(reader.email)
                if other is not None and other.name != old.name:
                    raise SubscriberError(f"email: {reader.email} is reader {other.name} already")
            if reader.name != old.name:
                raise SubscriberError(
                    f"name: a reader's name does not change (it is in its file names and "
                    f"links); {old.name} stays {old.name}"
                )
            conn.execute(update(readers).where(readers.c.name == old.name).values(_row_of(reader)))
        return reader

    def set_status(self, ref: str, status: str, now: datetime) -> Reader:
        """Move a reader to ``status``; becoming unsubscribed takes effect from the next
        run on (only active readers are served)."""
        if status not in STATUSES:
            raise SubscriberError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
        return self.update_subscriber(ref, {"status": status}, now)

    def remove_subscriber(self, ref: str) -> Reader:
        """Delete a reader's row (its delivery history stays); return what it was."""
        with self.transaction() as conn:
            old = self._known(ref)
            conn.execute(delete(readers).where(readers.c.name == old.name))
        return old

    # --- many readers -----------------------------------------------------------------------

    def list_subscribers(self, status: str | None = None) -> list[Reader]:
        """The readers (with this status), in the order they were added. One whose stored details no
        longer validate is logged and left out."""
        query = select(readers).order_by(readers.c.id)
        if status is not None:
            query = query.where(readers.c.status == status)
        found = []
        for row in self.conn.execute(query):
            try:
                found.append(_reader_of(row))
            except SubscriberError as exc:
                log.error("%s", exc)
        return found

    def import_subscribers(
        self,
        rows: Sequence[Mapping[str, Any]],
        now: datetime,
        *,
        check: Check | None = None,
        skip_bad: bool = False,
        write: bool = True,
    ) -> ImportResult:
        """Add or update readers by address, all validated first. If any row is bad,
        nothing is written (with ``skip_bad``: the good rows are); ``write=False`` only
        validates. A row without a name keeps the name its address has, or gets a new one."""
        result = ImportResult()
        existing = self._by_email([email_key(str(r.get("email", ""))) for r in rows])
        names = self._names([str(r["name"]) for r in rows if r.get("name")])
        new: list[Reader] = []
        changed: list[Reader] = []
        seen: dict[str, int] = {}
        for index, values in enumerate(rows):
            planned = self._plan_row(index, values, existing, names, seen, now, check)
            if isinstance(planned, Reader):
                old = existing.get(email_key(planned.email))
                (changed if old else new).append(planned)
            else:
                result.bad += [(index, problem) for problem in planned]
        if (result.bad and not skip_bad) or not write:
            return result
        with _same_reader_meanwhile(), self.transaction() as conn:
            for start in range(0, len(new), CHUNK):
                conn.execute(insert(readers), [_row_of(r) for r in new[start : start + CHUNK]])
            if changed:
                statement = (
                    update(readers)
                    .where(readers.c.name == bindparam("old_name"))
                    .values(
                        {
                            c.name: bindparam(c.name)
                            for c in readers.c
                            if c.name not in ("id", "name")
                        }
                    )
                )
                params = [
                    {k: v for k, v in _row_of(r).items() if k != "name"} | {"old_name": r.name}
                    for r in changed
                ]
                conn.execute(statement, params)
        result.added, result.updated, result.written = len(new), len(changed), True
        return result

    # --- helpers ----------------------------------------------------------------------------

    def _plan_row(
        self,
        index: int,
        values: Mapping[str, Any],
        existing: dict[str, Reader],
        names: dict[str, str],
        seen: dict[str, int],
        now: datetime,
        check: Check | None,
    ) -> Reader | list[str]:
        """The reader one import row makes, or its problems."""
        key = email_key(str(values.get("email", "")))
        old = existing.get(key)
        given = str(values.get("name") or "")
        for mark, what in ((f"email:{key}", "email"), (f"name:{given}", "name")):
            if mark in seen and mark != "name:":
                return [f"{what}: {values.get(what)} is also in row {seen[mark] + 1}"]
            seen[mark] = index
        if old is not None and given and given != old.name:
            return [f"name: {values.get('email')} is reader {old.name!r}, not {given!r}"]
        if old is None and given and given in names:
            return [f"name: {given!r} is taken by reader {names[given]}"]
        filled = dict(values) | {"name": old.name if old else given or None}
        try:
            if old is not None:
                settings, state = validate_reader(merged(old, filled))
            else:
                settings, state = validate_reader(named(filled))
        except SubscriberError as exc:
            return exc.problems
        reader = stamped(old, settings, state, now)
        problems = check(reader) if check else []
        return problems or reader

    def _refuse(self, reader: Reader, check: Check | None) -> None:
        problems = check(reader) if check else []
        if problems:
            raise SubscriberError("; ".join(problems), problems=problems)

    def _known(self, ref: str) -> Reader:
        reader = self.get_subscriber(ref)
        if reader is None:
            raise SubscriberError(
                f"no reader {ref!r} in the store {self.location}",
                hint="`digest subscribers list` shows them",
            )
        return reader

    def _by_email(self, keys: Sequence[str]) -> dict[str, Reader]:
        found: dict[str, Reader] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), CHUNK):
            query = select(readers).where(readers.c.email_key.in_(unique[start : start + CHUNK]))
            found.update((row.email_key, _reader_of(row)) for row in self.conn.execute(query))
        return found

    def _names(self, names: Sequence[str]) -> dict[str, str]:
        """Of these names, those taken, with their reader's address."""
        found: dict[str, str] = {}
        unique = sorted(set(names))
        for start in range(0, len(unique), CHUNK):
            query = select(readers.c.name, readers.c.email).where(
                readers.c.name.in_(unique[start : start + CHUNK])
            )
            found.update((name, email) for name, email in self.conn.execute(query))
        return found
