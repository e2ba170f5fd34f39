"""What retention remembers across passes and restarts: ``<state_dir>/retention.json``.

Two facts no other durable record holds: since when each stored artifact has been unwanted
(the store's files say when they were built, git says when a manifest changed, but an
installed kernel that went away is in neither), and which host kernels had drivers wanted
for them, and when last, so the previous kernel's drivers can be told apart. Written whole
and atomically (``edges.atomic``) after a pass has applied, never by ``plan``. A missing or
unreadable file is an empty ledger: the worst that does is restart the grace periods, so a
lost ledger delays deletions and never hastens one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.edges.state import jsonfile
from reconciler.model import timestamps

NAME = "retention.json"
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


def path(state_dir: Path) -> Path:
    return state_dir / NAME


def read(state_dir: Path) -> Ledger:
    """The ledger of ``state_dir``; an empty one when there is none or it cannot be read."""
    return jsonfile.read(path(state_dir), Ledger.from_json, Ledger,
                         "retention.ledger.unreadable")


def write(state_dir: Path, ledger: Ledger) -> None:
    jsonfile.write(path(state_dir), ledger.to_json())
