"""Cron schedules and durations: parsing, occurrences, being inside a window."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.model import cron

UTC = dt.UTC


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("30m", 1800), ("8h", 28800), ("1h30m", 5400), ("2d", 172800), ("0s", 0)])
def test_durations_read_as_seconds(text: str, seconds: int) -> None:
    assert cron.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "30x", "1m1h", "-1s"])
def test_a_duration_that_is_not_one_is_refused_with_the_forms_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        cron.parse_duration(text)


def test_durations_are_shown_in_the_shortest_form() -> None:
    assert [cron.show_duration(s) for s in (0, 45, 90, 3600, 5400, 90061)] == [
        "0s", "45s", "1m30s", "1h", "1h30m", "1d1h1m1s"]


def test_a_daily_schedule_matches_its_minute_only() -> None:
    daily = cron.parse("0 22 * * *")
    assert daily.matches(dt.datetime(2026, 12, 7, 22, 0, tzinfo=UTC))
    assert not daily.matches(dt.datetime(2026, 12, 7, 22, 1, tzinfo=UTC))


def test_steps_ranges_lists_and_sunday_as_seven() -> None:
    schedule = cron.parse("*/15 9-17 * * 1-5")
    monday = dt.datetime(2026, 12, 7, 9, 45, tzinfo=UTC)
    assert schedule.matches(monday)
    assert not schedule.matches(monday.replace(minute=50))
    assert not schedule.matches(dt.datetime(2026, 12, 6, 9, 45, tzinfo=UTC))  # a Sunday
    assert cron.parse("0 0 * * 7").weekdays == frozenset({0})


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    schedule = cron.parse("0 0 1 * 1")  # the 1st, or any Monday (Vixie cron)
    assert schedule.matches(dt.datetime(2026, 12, 1, tzinfo=UTC))  # a Tuesday
    assert schedule.matches(dt.datetime(2026, 12, 7, tzinfo=UTC))  # a Monday
    assert not schedule.matches(dt.datetime(2026, 12, 8, tzinfo=UTC))


@pytest.mark.parametrize(("text", "says"), [
    ("0 22 * *", "5 fields"), ("0 24 * * *", "hour field '24'"),
    ("x * * * *", "minute field 'x'"), ("*/0 * * * *", "minute field")])
def test_a_bad_schedule_says_which_field(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        cron.parse(text)


def test_inside_a_window_that_spans_midnight() -> None:
    nightly = cron.parse("0 22 * * *")
    assert cron.inside(nightly, 8 * 3600, dt.datetime(2026, 12, 8, 5, 59, tzinfo=UTC))
    assert not cron.inside(nightly, 8 * 3600, dt.datetime(2026, 12, 8, 6, 0, tzinfo=UTC))
    assert cron.inside(nightly, 8 * 3600, dt.datetime(2026, 12, 7, 22, 0, 1, tzinfo=UTC))
    assert not cron.inside(nightly, 8 * 3600, dt.datetime(2026, 12, 7, 21, 59, tzinfo=UTC))


def test_the_next_start_is_the_first_occurrence_after_now() -> None:
    nightly = cron.parse("0 22 * * *")
    now = dt.datetime(2026, 12, 7, 22, 0, 30, tzinfo=UTC)
    assert cron.next_start(nightly, now) == dt.datetime(2026, 12, 8, 22, 0, tzinfo=UTC)
    assert cron.next_start(cron.parse("0 0 29 2 *"), now) is None  # not within a week


BERLIN = cron.zone("Europe/Berlin")


def test_a_window_in_a_time_zone_opens_on_that_clock_summer_and_winter() -> None:
    """22:00 in Berlin is 20:00 UTC in summer (CEST) and 21:00 UTC in winter (CET)."""
    nightly = cron.parse("0 22 * * *")
    assert cron.inside(nightly, 3600, dt.datetime(2026, 7, 1, 20, 30, tzinfo=UTC), BERLIN)
    assert not cron.inside(nightly, 3600, dt.datetime(2026, 7, 1, 21, 30, tzinfo=UTC), BERLIN)
    assert not cron.inside(nightly, 3600, dt.datetime(2026, 12, 1, 20, 30, tzinfo=UTC), BERLIN)
    assert cron.inside(nightly, 3600, dt.datetime(2026, 12, 1, 21, 30, tzinfo=UTC), BERLIN)
    assert cron.next_start(nightly, dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC), BERLIN) == (
        dt.datetime(2026, 12, 1, 21, 0, tzinfo=UTC))


def test_a_window_across_a_clock_change_lasts_its_real_duration() -> None:
    """Berlin's clocks go back at 01:00 UTC on 2026-10-25 (03:00 CEST becomes 02:00 CET).
    A 3 h window opening at 01:00 local (23:00 UTC the day before) closes at 02:00 UTC,
    three real hours later, though the local clock then reads 03:00, not 04:00."""
    early = cron.parse("0 1 * * *")
    assert cron.inside(early, 3 * 3600, dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), BERLIN)
    assert not cron.inside(early, 3 * 3600, dt.datetime(2026, 10, 25, 2, 30, tzinfo=UTC),
                           BERLIN)


def test_an_unknown_time_zone_is_refused_with_the_names_expected() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus': expected an IANA"):
        cron.zone("Mars/Olympus")
    assert cron.zone("UTC") is dt.UTC
