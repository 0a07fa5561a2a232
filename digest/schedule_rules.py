"""Cron lines as users write them, turned into APScheduler triggers; pure.

Standard crontab counts weekdays from Sunday (0 or 7) to Saturday (6); APScheduler's
CronTrigger counts from Monday (0). Passing "1-5" straight through would run on Tuesday to
Saturday, so the weekday field is rewritten with day names before APScheduler sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def weekdays(field: str) -> str:
    """A standard crontab weekday field as APScheduler day names ("1-5" -> "mon,...,fri")."""
    if field in {"*", "?"}:
        return "*"
    chosen: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"weekday step must be 1 or more in {field!r}")
        if spec in {"*", "?"}:
            low, high = 0, 6
        elif "-" in spec:
            low, high = (_day(v) for v in spec.split("-", 1))
        else:
            low = high = _day(spec)
            if step_text:
                high = 6
        if low > high:
            raise ValueError(f"weekday range {spec!r} runs backwards")
        chosen.update(range(low, high + 1, step))
    return ",".join(_DAYS[d] for d in sorted(chosen))


def _day(value: str) -> int:
    value = value.strip().lower()
    if value[:3] in _DAYS:
        return _DAYS.index(value[:3])
    if not value.isdigit() or int(value) > 7:
        raise ValueError(f"expected a weekday 0-7 or a name (mon, tue, ...) but got {value!r}")
    return int(value) % 7  # 7 is Sunday too


def cron_trigger(line: str, timezone: str) -> CronTrigger:
    """The trigger for a 5-field crontab line (or 6 fields, seconds first)."""
    fields = line.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            "expected 5 cron fields (minute hour day-of-month month day-of-week), "
            f"found {len(fields)}"
        )
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekdays(weekday),
            timezone=ZoneInfo(timezone),
        )
    except ValueError as exc:
        raise ValueError(f"not a valid cron line: {exc}") from None


def next_fire_times(line: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times the cron line fires strictly after ``after``."""
    found: list[datetime] = []
    for fire in _fires(cron_trigger(line, timezone), after, after + timedelta(days=3660)):
        if fire > after:
            found.append(fire)
        if len(found) == count:
            break
    return found


def previous_fire_time(line: str, timezone: str, now: datetime) -> datetime | None:
    """The last time the cron line fired at or before ``now`` (looking back up to a year)."""
    trigger = cron_trigger(line, timezone)
    for days in (1, 8, 32, 367):  # short windows first: a frequent schedule stays cheap
        last = None
        for fire in _fires(trigger, now - timedelta(days=days), now):
            last = fire
        if last is not None:
            return last
    return None


def _fires(trigger: CronTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    previous = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire > end:
            return
        yield fire
        previous, now = fire, fire
