"""What retention remembers across passes, as a value (``edges.state.ledger`` keeps it in
``<state_dir>/retention.json``; ``plan.retention`` reads and renews it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import timestamps

FORMAT = 1


@dataclass(frozen=True)
class KernelSeen:
    """A host kernel (its ``uname -r``) whose drivers were wanted, and when last."""

    release: str
    last_wanted: dt.datetime
    artifacts: tuple[str, ...]  # store paths


@dataclass(frozen=True)
class Ledger:
    # Store path -> since when nothing has wanted it.
    unwanted_since: Mapping[str, dt.datetime] = field(default_factory=dict)
    kernels: tuple[KernelSeen, ...] = ()  # the most recently wanted first

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "unwanted": {path: _stamp(at) for path, at in sorted(self.unwanted_since.items())},
            "kernels": [{"release": k.release, "lastWanted": _stamp(k.last_wanted),
                         "artifacts": list(k.artifacts)} for k in self.kernels],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Ledger:
        """Raises KeyError, TypeError or ValueError on a document of another shape."""
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, not {FORMAT}")
        return cls(
            {str(path): _parse(at) for path, at in doc["unwanted"].items()},
            tuple(KernelSeen(str(k["release"]), _parse(k["lastWanted"]),
                             tuple(str(a) for a in k["artifacts"])) for k in doc["kernels"]),
        )


def _stamp(at: dt.datetime) -> str:
    return timestamps.iso_utc(at)


def _parse(text: Any) -> dt.datetime:
    at = dt.datetime.fromisoformat(str(text))
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return at
