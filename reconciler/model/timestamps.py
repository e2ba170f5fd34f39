"""Timestamps as the state files, the index and ``status`` write them: ISO 8601 in UTC
with a ``Z`` (``2026-12-01T19:06:32Z``), to whole seconds unless a record needs finer."""

from __future__ import annotations

import datetime as dt


def iso_utc(at: dt.datetime, timespec: str = "seconds") -> str:
    """``at`` (an aware datetime) in UTC, ``Z``-suffixed."""
    return at.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now(timespec: str = "seconds") -> str:
    """The current time, as ``iso_utc`` writes it."""
    return iso_utc(dt.datetime.now(dt.UTC), timespec)
