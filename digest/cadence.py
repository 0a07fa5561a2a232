"""When a store reader is due: its daily or weekly send moment, in its own time zone; pure.

A reader's send moment is ``send_hour``:00 local time, every day (daily) or on its
``weekday`` (weekly), read with zoneinfo so that daylight saving time is right:

- on a spring-forward day a send hour that does not exist (02:00 in a gap from 02:00 to
  03:00) happens at the first valid local time after it (03:00);
- on a fall-back day a send hour that happens twice happens once, at its first
  occurrence (fold 0).

A reader is due when it has not been served since its latest send moment. A reader never
served is due from its first send moment at or after it was confirmed (or created, if it
never needed confirming): one who signs up at 03:00 for 07:00 gets its first digest at
07:00 that day, one who signs up at 08:00 gets it the next day at 07:00, never a digest in
the middle of the night at sign-up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # readers.py asks this module who is due
    from digest.readers import ReaderState

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # as ReaderState spells them

# A gap in local time lasts two hours at most (tzdb); minutes are the finest offsets.
_LONGEST_GAP_MINUTES = 180


def exists(local: datetime) -> bool:
    """Whether a local wall time (aware, zoneinfo) really occurs: a time in a
    spring-forward gap comes back from UTC as another wall time."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def send_moment(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of ``hour``:00 local time on ``day``: the first valid local time
    after it when it falls in a gap, its first occurrence when it happens twice."""
    local = datetime.combine(day, time(hour), tzinfo=zone)  # fold 0: the first occurrence
    for _minute in range(_LONGEST_GAP_MINUTES):
        if exists(local):
            return local.astimezone(UTC)
        local += timedelta(minutes=1)  # wall-clock arithmetic: the next local minute
    raise ValueError(f"{zone.key} has no valid local time near {day} {hour:02d}:00")


def scheduled_on(state: ReaderState, day: date) -> bool:
    """Whether a reader's digest goes on this local day."""
    return state.cadence == "daily" or WEEKDAYS[day.weekday()] == state.weekday


def latest_moment(state: ReaderState, now: datetime) -> datetime:
    """The reader's latest send moment at or before ``now``."""
    zone = ZoneInfo(state.timezone)
    today = now.astimezone(zone).date()
    for back in range(9):  # a week and the day either side of a shifted local date
        day = today - timedelta(days=back)
        if scheduled_on(state, day):
            moment = send_moment(day, state.send_hour, zone)
            if moment <= now:
                return moment
    raise AssertionError("a weekly reader has a send moment in every nine days")


def next_moment(state: ReaderState, after: datetime) -> datetime:
    """The reader's first send moment strictly after ``after``."""
    zone = ZoneInfo(state.timezone)
    today = after.astimezone(zone).date()
    for ahead in range(-1, 9):
        day = today + timedelta(days=ahead)
        if scheduled_on(state, day):
            moment = send_moment(day, state.send_hour, zone)
            if moment > after:
                return moment
    raise AssertionError("a weekly reader has a send moment in every nine days")


def is_due(state: ReaderState, served_at: datetime | None, since: datetime, now: datetime) -> bool:
    """Whether a reader is owed a digest at ``now``: not served since its latest send
    moment. ``since``: when it was confirmed (or created); a reader never served is due
    from its first send moment at or after that."""
    latest = latest_moment(state, now)
    if served_at is None:
        return latest >= since
    return latest > served_at
