"""The one timestamp format of state files, the index and status."""

from __future__ import annotations

import datetime as dt

from reconciler.model import timestamps


def test_utc_with_z_to_whole_seconds_unless_asked() -> None:
    at = dt.datetime(2026, 12, 1, 19, 6, 32, 642643, tzinfo=dt.UTC)
    assert timestamps.iso_utc(at) == "2026-12-01T19:06:32Z"
    assert timestamps.iso_utc(at, "milliseconds") == "2026-12-01T19:06:32.642Z"


def test_another_zone_is_written_in_utc() -> None:
    at = dt.datetime(2026, 12, 1, 20, 6, 32, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert timestamps.iso_utc(at) == "2026-12-01T19:06:32Z"


def test_now_is_the_current_time() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    written = dt.datetime.fromisoformat(timestamps.now())
    assert before <= written <= dt.datetime.now(dt.UTC)
