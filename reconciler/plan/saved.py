"""Saved plans, as terraform has them: ``plan --out FILE``, later ``apply FILE``.

The file records the revision the plan was made at, the settings that name its inputs,
a digest of the actual state it saw, and its changes. ``apply FILE`` plans again from
exactly those inputs and refuses, naming what moved, when the branch has moved on or the
actual state is no longer the one planned against; otherwise it applies that same plan.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.edges import atomic
from reconciler.errors import ConfigError, StalePlan
from reconciler.plan.planner import Planned
from reconciler.settings import Settings

FORMAT = "falco-reconciler/plan-v1"
# The settings that decide what a plan says; the rest (build jobs, timeouts) may differ.
_INPUTS = ("repo", "ref", "path", "host_root", "store", "listen", "hostname", "privileged")


def save(path: Path, planned: Planned, settings: Settings) -> None:
    doc = {
        "format": FORMAT,
        **planned.plan.to_json(),
        "observedDigest": planned.observed.digest(),
        "settings": {name: _plain(getattr(settings, name)) for name in _INPUTS},
    }
    atomic.write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode())


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read saved plan {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a plan saved by `reconciler plan --out`")
    return doc


def settings_for(doc: dict[str, Any], base: Settings) -> Settings:
    """The saved inputs over ``base``; ``ref`` stays the branch so a move is noticed."""
    saved = doc["settings"]
    values: dict[str, Any] = {}
    for name in _INPUTS:
        value = saved.get(name)
        if value is not None and name in ("host_root", "store"):
            value = Path(value)
        values[name] = value
    return replace(base, **values)


def check(doc: dict[str, Any], planned: Planned) -> None:
    """Refuse when the revision or the actual state moved since the plan was saved."""
    if planned.plan.revision != doc["revision"]:
        raise StalePlan(
            f"the manifests moved from {doc['revision'][:12]} to "
            f"{planned.plan.revision[:12]} since the plan was saved; plan again"
        )
    if planned.observed.digest() != doc["observedDigest"]:
        raise StalePlan(
            "the actual state (store or containers) changed since the plan was saved; plan again"
        )
    if planned.plan.to_json()["changes"] != doc["changes"]:
        raise StalePlan("planning again gives other changes than the saved plan; plan again")
