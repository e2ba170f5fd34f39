"""Wave membership (globs, the deterministic share), windows and gate readings."""

from __future__ import annotations

import datetime as dt

from reconciler.desired import waves
from reconciler.desired.waves import FleetView, Reading, WaveCounts
from reconciler.manifests.models import Metadata
from reconciler.manifests.rollout import Rollout, RolloutSpec, Wave, Window, WindowKind


def rollout(*wave_list: Wave, name: str = "fleet") -> Rollout:
    return Rollout(api_version="falco-reconciler/v1", kind="Rollout",
                   metadata=Metadata(name=name), spec=RolloutSpec(waves=wave_list))


HOSTS = [f"web-{n}" for n in range(2000)]


def test_a_host_is_in_the_first_wave_that_selects_it_and_else_in_the_last() -> None:
    plan = rollout(Wave(name="canary", hostnames=("web-1",)), Wave(name="web",
                   hostnames=("web-*",)), Wave(name="db", hostnames=("db-*",)))
    assert [waves.wave_of(plan, h) for h in ("web-1", "WEB-2", "db-1", "mail-1")] == [0, 1, 2, 2]


def test_the_share_is_near_the_percent_and_the_same_in_every_process() -> None:
    plan = rollout(Wave(name="canary", hostnames=("web-*",), percent=5), Wave(name="rest"))
    chosen = [h for h in HOSTS if waves.wave_of(plan, h) == 0]
    assert 60 <= len(chosen) <= 140  # 5% of 2000 is 100
    # Fixed by the hash of the names alone, what any other host (or a restart) computes:
    # printf 'fleet\0web-1' | sha256sum, the first 8 bytes as an integer, mod 10000.
    assert waves.bucket("fleet", "web-1") == 5658581257811370899 % 10000
    assert chosen[:3] == ["web-13", "web-15", "web-22"]


def test_shares_are_cumulative_across_waves() -> None:
    five = {h for h in HOSTS if waves.selects(Wave(name="a", percent=5), "fleet", h)}
    fifty = {h for h in HOSTS if waves.selects(Wave(name="b", percent=50), "fleet", h)}
    assert five < fifty


def test_another_rollout_name_picks_other_hosts() -> None:
    wave = Wave(name="canary", percent=10)
    first = {h for h in HOSTS if waves.selects(wave, "fleet", h)}
    second = {h for h in HOSTS if waves.selects(wave, "other", h)}
    assert first != second


NIGHT = Window(kind=WindowKind.ALLOW, schedule="0 22 * * *", duration="8h")
SATURDAY = Window(kind=WindowKind.DENY, schedule="0 0 * * 6", duration="48h")


def test_allow_windows_and_deny_wins() -> None:
    wave = Wave(name="web", windows=(NIGHT, SATURDAY))
    monday_night = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)
    assert waves.window_hold(wave, monday_night) == ""
    assert waves.window_hold(wave, monday_night.replace(hour=12)) == (
        "outside its allow windows; next opens 2026-12-07T22:00Z")
    saturday_night = dt.datetime(2026, 12, 12, 23, 0, tzinfo=dt.UTC)
    assert waves.window_hold(wave, saturday_night) == "in a deny window (0 0 * * 6 for 48h)"
    assert waves.window_hold(Wave(name="any"), saturday_night) == ""


def view(members: int, on: int, healthy: int) -> FleetView:
    return FleetView({"canary": WaveCounts(members, {"abc": on}, {"abc": healthy})})


def test_gate_readings() -> None:
    assert waves.read_gate(view(3, 3, 3), "canary", "abc").state is Reading.OPEN
    pending = waves.read_gate(view(3, 2, 2), "canary", "abc")
    assert (pending.state, pending.describe("abc")) == (
        Reading.PENDING, "2 of 3 hosts healthy on abc")
    failing = waves.read_gate(view(3, 3, 2), "canary", "abc")
    assert (failing.state, failing.describe("abc")) == (
        Reading.FAILING, "1 of 3 hosts failing on abc")
    down = waves.read_gate(FleetView(error="Prometheus at http://127.0.0.1:9 is unreachable"),
                           "canary", "abc")
    assert (down.state, down.describe("abc")) == (
        Reading.UNKNOWN, "gate closed: Prometheus at http://127.0.0.1:9 is unreachable")
    empty = waves.read_gate(FleetView({}), "canary", "abc")
    assert (empty.state, empty.describe("abc")) == (Reading.OPEN, "no host seen in wave canary")


def test_a_deny_window_in_a_time_zone_says_which() -> None:
    sunday = Window(kind=WindowKind.DENY, schedule="0 0 * * 0", duration="24h",
                    timeZone="America/New_York")
    wave = Wave(name="web", windows=(sunday,))
    # 03:00 UTC on Sunday 2026-12-13 is still Saturday 22:00 in New York: not denied yet
    assert waves.window_hold(wave, dt.datetime(2026, 12, 13, 3, 0, tzinfo=dt.UTC)) == ""
    assert waves.window_hold(wave, dt.datetime(2026, 12, 13, 6, 0, tzinfo=dt.UTC)) == (
        "in a deny window (0 0 * * 0 America/New_York for 24h)")
