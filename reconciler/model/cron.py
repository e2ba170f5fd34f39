"""Five-field cron schedules (minute hour day-of-month month day-of-week), in UTC, and the
durations a rollout speaks in (``30s``, ``30m``, ``8h``, ``1h30m``, ``2d``).

A maintenance window is an occurrence of its schedule and the ``duration`` after it, as in
Argo CD's sync windows. Whether ``now`` is inside one is asked by walking back minute by
minute over at most the window's duration: windows are bounded (``MAX_WINDOW``), so this
costs a few thousand integer comparisons at most, and no cron library is needed. Day of
month and day of week follow Vixie cron: when both are restricted, either may match.
Parse errors are ``ValueError`` with one sentence, which the manifest loader locates.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

MAX_WINDOW = 7 * 86400  # a week: a longer window is a policy, not a maintenance window
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
            "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
            "@annually": "0 0 1 1 *"}


def parse_duration(text: str) -> int:
    """Seconds in ``30s`` / ``30m`` / ``8h`` / ``2d`` / ``1h30m`` (ValueError otherwise)."""
    found = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not text or found is None or not any(found.groups()):
        raise ValueError(f"expected a duration such as 30s, 30m, 8h, 1h30m or 2d, got {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def show_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``, ``7200`` -> ``2h``: the shortest of the forms parsed above."""
    left, out = max(0, round(seconds)), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out + (f"{left}s" if left or not out else "")


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 is read as 0)
    any_day: bool  # day of month was "*"
    any_weekday: bool  # day of week was "*"

    def matches(self, at: dt.datetime) -> bool:
        """Whether the minute ``at`` (UTC) is an occurrence."""
        if at.minute not in self.minutes or at.hour not in self.hours or (
                at.month not in self.months):
            return False
        day = at.day in self.days
        weekday = (at.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def parse(text: str) -> Schedule:
    """A schedule from five cron fields or an ``@daily``-style alias (ValueError)."""
    fields = _ALIASES.get(text.strip(), text).split()
    if len(fields) != len(_FIELDS):
        raise ValueError(f"expected a cron schedule of 5 fields (minute hour day-of-month month "
                         f"day-of-week, e.g. \"0 22 * * *\"), got {text!r}")
    sets = [_field(part, *spec) for part, spec in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Schedule(sets[0], sets[1], sets[2], sets[3], weekdays,
                    fields[2] == "*", fields[4] == "*")


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = low, high
            elif "-" in span:
                a, b = span.split("-", 1)
                first, last = int(a), int(b)
            else:
                first = int(span)
                last = high if step_text else first
        except ValueError:
            raise ValueError(f"cron {name} field {text!r}: expected numbers, ranges (a-b), "
                             "steps (*/n) or lists (a,b)") from None
        if not low <= first <= last <= high or step < 1:
            raise ValueError(f"cron {name} field {text!r}: values must lie in {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``); ValueError if unknown."""
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as "
                         "UTC or Europe/Berlin") from exc


def _matches(schedule: Schedule, at: dt.datetime, tz: dt.tzinfo) -> bool:
    """Whether the minute ``at`` (UTC) is an occurrence on the clock of ``tz``."""
    return schedule.matches(at if tz is dt.UTC else at.astimezone(tz))


def inside(schedule: Schedule, duration: int, now: dt.datetime,
           tz: dt.tzinfo = dt.UTC) -> bool:
    """Whether ``now`` falls in ``[occurrence, occurrence + duration)`` for some occurrence
    of ``schedule`` read on the clock of ``tz``. Minutes are stepped in UTC and each is
    read in ``tz``, so a window across a daylight-saving change lasts its real duration."""
    now = now.astimezone(dt.UTC)
    minute = now.replace(second=0, microsecond=0)
    steps = min(duration, MAX_WINDOW) // 60 + 1
    for back in range(steps):
        start = minute - dt.timedelta(minutes=back)
        if now - start < dt.timedelta(seconds=duration) and _matches(schedule, start, tz):
            return True
    return False


def next_start(schedule: Schedule, now: dt.datetime,
               tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """The first occurrence after ``now`` (in UTC), within a week (None: none that soon)."""
    minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    for ahead in range(1, MAX_WINDOW // 60 + 1):
        at = minute + dt.timedelta(minutes=ahead)
        if _matches(schedule, at, tz):
            return at
    return None
