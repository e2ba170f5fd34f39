"""Which wave a host is in, whether a wave may move now, and what a gate reads: pure.

Membership: a host is in the first wave whose globs match it and, when the wave has a
``percent``, whose share takes it; hosts no wave selects are in the last wave. The share
is ``bucket(rollout, host) < percent * 100`` with ``bucket`` a sha256 of the rollout's
name and the host name, mod 10,000: every host computes the same answer for every host,
on every pass and after restarts, without talking to any of them. One bucket per host
(not one per wave) makes shares cumulative: the hosts in the first 5% of ``web-*`` are
also in its first 50%, so a second wave of 50% adds 45% more hosts.

A gate reading is computed from one ``FleetView``: per wave, how many hosts were seen in
it (over a lookback, so a reconciler that vanished keeps the gate shut rather than
opening it) and, per revision, how many run it, how many of those are healthy, and how
many failed on it (a canary that failed and rolled back still says so: the revision stays
failing for the waves after it).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.manifests.models import glob_match
from reconciler.manifests.rollout import Rollout, Wave, WindowKind
from reconciler.model import cron

BUCKETS = 10_000


def bucket(rollout: str, hostname: str) -> int:
    """The host's place in ``[0, 10000)``, the same everywhere and always."""
    digest = hashlib.sha256(f"{rollout}\0{hostname.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def selects(wave: Wave, rollout: str, hostname: str) -> bool:
    if wave.hostnames is not None and not any(
            glob_match(hostname.lower(), glob.lower()) for glob in wave.hostnames):
        return False
    return wave.percent is None or bucket(rollout, hostname) < wave.percent * (BUCKETS // 100)


def wave_of(rollout: Rollout, hostname: str) -> int:
    """The index of the host's wave: the first that selects it, else the last."""
    waves = rollout.spec.waves
    for index, wave in enumerate(waves):
        if selects(wave, rollout.metadata.name, hostname):
            return index
    return len(waves) - 1


def window_hold(wave: Wave, now: dt.datetime) -> str:
    """Why the wave may not move now ("" when it may): deny wins; with any allow window,
    only inside one."""
    allows = [w for w in wave.windows if w.kind is WindowKind.ALLOW]
    for window in wave.windows:
        if window.kind is WindowKind.DENY and cron.inside(
                cron.parse(window.schedule), window.seconds, now, cron.zone(window.time_zone)):
            where = "" if window.time_zone == "UTC" else f" {window.time_zone}"
            return f"in a deny window ({window.schedule}{where} for {window.duration})"
    if not allows or any(cron.inside(cron.parse(w.schedule), w.seconds, now,
                                     cron.zone(w.time_zone)) for w in allows):
        return ""
    starts = [cron.next_start(cron.parse(w.schedule), now, cron.zone(w.time_zone))
              for w in allows]
    soonest = min((s for s in starts if s is not None), default=None)
    when = f"; next opens {soonest:%Y-%m-%dT%H:%MZ}" if soonest else ""
    return f"outside its allow windows{when}"


class Reading(enum.StrEnum):
    OPEN = "open"  # every host of the watched wave is healthy on the revision
    PENDING = "pending"  # not yet: some have not applied it
    FAILING = "failing"  # some host of the watched wave is unhealthy on the revision
    UNKNOWN = "unknown"  # Prometheus did not answer: closed, and said so


@dataclass(frozen=True)
class WaveCounts:
    """What Prometheus sees of one wave."""

    members: int = 0  # hosts seen in the wave over the lookback
    on: Mapping[str, int] = field(default_factory=dict)  # revision -> hosts on it now
    healthy: Mapping[str, int] = field(default_factory=dict)  # revision -> healthy on it
    # revision -> hosts that failed on it (and may since have rolled back)
    failed: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetView:
    """Every wave's counts at one moment, or why there are none."""

    waves: Mapping[str, WaveCounts] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class GateReading:
    state: Reading
    healthy: int = 0
    total: int = 0
    why: str = ""

    def describe(self, revision: str) -> str:
        if self.state is Reading.UNKNOWN:
            return f"gate closed: {self.why}"
        if self.why:
            return self.why
        return f"{self.healthy} of {self.total} hosts healthy on {revision[:12]}"


def read_gate(view: FleetView, watched: str, revision: str) -> GateReading:
    """The default gate about wave ``watched`` for ``revision``."""
    if view.error:
        return GateReading(Reading.UNKNOWN, why=view.error)
    counts = view.waves.get(watched, WaveCounts())
    on = counts.on.get(revision, 0)
    healthy = counts.healthy.get(revision, 0)
    failing = max(on - healthy, counts.failed.get(revision, 0))
    if failing:
        return GateReading(Reading.FAILING, healthy, counts.members,
                           f"{failing} of {counts.members} hosts failing on {revision[:12]}")
    if counts.members == 0:
        return GateReading(Reading.OPEN, 0, 0, f"no host seen in wave {watched}")
    if healthy >= counts.members:
        return GateReading(Reading.OPEN, healthy, counts.members)
    return GateReading(Reading.PENDING, healthy, counts.members)
