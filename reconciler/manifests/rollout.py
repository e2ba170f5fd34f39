"""The ``Rollout`` document: in which waves a new revision reaches the fleet.

Ordered waves, each selecting hosts by hostname globs and optionally a deterministic
share of them (``percent``), each with a soak (how long its gate must hold first), an
optional PromQL gate of the operator's own, and maintenance windows (cron allow/deny, as
Argo CD's sync windows). The Prometheus connection is a host setting, never named here.
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


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Window(_Document):
    kind: WindowKind = Field(description="allow: waves move only inside an allow window (when "
                             "any is given); deny: never inside one (deny wins)")
    schedule: Schedule = Field(description="when the window opens: five cron fields in UTC "
                               "(minute hour day-of-month month day-of-week) or @daily...")
    duration: Annotated[str, AfterValidator(_window_duration)] = Field(
        description="how long it stays open: 30m, 8h, 2d (at most 7d)")

    @property
    def seconds(self) -> int:
        return cron.parse_duration(self.duration)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Wave(_Document):
    name: Name = Field(description="the wave's name, unique in the rollout (shown in holds, "
                       "metrics and `rollout status`)")
    hostnames: tuple[Glob, ...] | None = Field(
        default=None, description="fnmatch globs on the host name (case ignored); omitted: "
        "every host. A host is in the first wave that selects it; hosts no wave selects are "
        "in the last wave")
    percent: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None, description="a deterministic share (0-100) of the hosts the globs "
        "match, the same on every host and every pass; shares are cumulative across waves "
        "(a host in the first 5% is also in the first 50%)")
    soak: Duration = Field(default="0s", description="how long this wave's gate must hold "
                           "continuously before the wave gets a revision (30s, 30m, 2h)")
    gate: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY)] | None = Field(
        default=None, description="an extra PromQL query that must return a non-empty "
        "result; $revision and $wave (the previous wave) are replaced")
    windows: tuple[Window, ...] = Field(
        default=(), max_length=MAX_WINDOWS, description="maintenance windows: when the wave "
        "may move to a new revision")

    @property
    def soak_seconds(self) -> int:
        return cron.parse_duration(self.soak)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class RolloutSpec(_Document):
    on_failure: OnFailure = Field(
        default=OnFailure.HOLD, alias="onFailure", description="when a gate fails: hold (the "
        "revision goes no further) or rollback (hosts that run it also go back to the last "
        "revision that passed)")
    waves: tuple[Wave, ...] = Field(min_length=1, max_length=MAX_WAVES,
                                    description="the waves, in order")


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Rollout(_Document):
    api_version: Literal["falco-reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec
