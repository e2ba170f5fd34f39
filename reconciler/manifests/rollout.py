"""The ``Rollout`` document: in which waves a new revision reaches the fleet.

Ordered waves, each selecting hosts by hostname globs and optionally a deterministic
share of them (``percent``), each with a soak (how long its gate must hold first), an
optional PromQL gate of the operator's own, and maintenance windows (cron allow/deny, as
Argo CD's sync windows, in UTC or an IANA time zone). The Prometheus connection is a host
setting, never named here.
Cross-document rules (one Rollout per repository, wave names unique) are in
``manifests.loading``; what a host does with it is ``desired.rollout``.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints
from pydantic.dataclasses import dataclass

from reconciler.manifests.grammar import Glob, Name
from reconciler.manifests.models import _STRICT, Metadata, _Document
from reconciler.model import cron

MAX_WAVES = 16
MAX_WINDOWS = 16
MAX_QUERY = 4096


def _schedule(value: str) -> str:
    cron.parse(value)  # raises ValueError with the sentence the loader locates
    return value


def _duration(value: str) -> str:
    cron.parse_duration(value)
    return value


def _time_zone(value: str) -> str:
    cron.zone(value)  # raises ValueError with the sentence the loader locates
    return value


def _window_duration(value: str) -> str:
    if cron.parse_duration(value) > cron.MAX_WINDOW:
        raise ValueError(f"a window lasts at most 7d, got {value!r}")
    return value


Duration = Annotated[str, StringConstraints(max_length=32), AfterValidator(_duration)]
Schedule = Annotated[str, StringConstraints(max_length=128), AfterValidator(_schedule)]


class OnFailure(enum.StrEnum):
    HOLD = "hold"  # a failing revision goes no further; hosts that run it keep it
    ROLLBACK = "rollback"  # ... and they go back to the last revision that passed


class WindowKind(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


# Each property's description is in manifests.schema.DESCRIBED, with every other kind's.


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Window(_Document):
    kind: WindowKind
    schedule: Schedule
    duration: Annotated[str, AfterValidator(_window_duration)]
    # The IANA zone the schedule's clock reads (Europe/Berlin: 22:00 is 22:00 there, in
    # summer and in winter); UTC unless given.
    time_zone: Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)] = \
        Field(default="UTC", alias="timeZone")

    @property
    def seconds(self) -> int:
        return cron.parse_duration(self.duration)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Wave(_Document):
    name: Name
    hostnames: tuple[Glob, ...] | None = None
    percent: Annotated[float, Field(gt=0, le=100)] | None = None
    soak: Duration = "0s"
    gate: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY)] | None = None
    windows: tuple[Window, ...] = Field(default=(), max_length=MAX_WINDOWS)

    @property
    def soak_seconds(self) -> int:
        return cron.parse_duration(self.soak)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class RolloutSpec(_Document):
    on_failure: OnFailure = Field(default=OnFailure.HOLD, alias="onFailure")
    waves: tuple[Wave, ...] = Field(min_length=1, max_length=MAX_WAVES)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Rollout(_Document):
    api_version: Literal["falco-reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec


def wave_names_problem(plan: Rollout) -> tuple[tuple[str | int, ...], str] | None:
    """A wave named twice (holds, metrics and gates name waves), where and what; or None."""
    seen: set[str] = set()
    for index, wave in enumerate(plan.spec.waves):
        if wave.name in seen:
            return ("spec", "waves", index, "name"), (
                f"spec.waves[{index}].name: wave {wave.name!r} is named twice; wave names "
                "must be unique in a Rollout")
        seen.add(wave.name)
    return None
