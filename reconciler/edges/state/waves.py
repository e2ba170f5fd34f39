"""What a host remembers of its rollout: ``<state_dir>/rollout.json``.

The heads it saw and when first (soak is measured from there), since when each gate has
held, the revision it moved to, the revisions that passed here and those that failed.
Written whole and atomically (``edges.atomic``) after each pass, never by ``plan``. A
missing or unreadable file is an empty history: the daemon then seeds it with its applied
revision (``daemon.rollout``), so a lost file restarts soaks and never skips one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.desired.rollout import History
from reconciler.edges.state import jsonfile

NAME = "rollout.json"
FORMAT = 1


def to_json(history: History) -> dict[str, Any]:
    return {"format": FORMAT, "seen": [[rev, at] for rev, at in history.seen],
            "openSince": dict(sorted(history.open_since.items())), "target": history.target,
            "good": list(history.good), "failed": sorted(history.failed)}


def from_json(doc: Any) -> History:
    """Raises KeyError, TypeError or ValueError on a document of another shape."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}, not {FORMAT}")
    target = doc["target"]
    return History(
        tuple((str(rev), float(at)) for rev, at in doc["seen"]),
        {str(key): float(at) for key, at in doc["openSince"].items()},
        None if target is None else str(target),
        tuple(str(rev) for rev in doc["good"]), frozenset(str(rev) for rev in doc["failed"]))


def path(state_dir: Path) -> Path:
    return state_dir / NAME


def read(state_dir: Path) -> History:
    return jsonfile.read(path(state_dir), from_json, History, "rollout.ledger.unreadable")


def write(state_dir: Path, history: History) -> None:
    jsonfile.write(path(state_dir), to_json(history))
