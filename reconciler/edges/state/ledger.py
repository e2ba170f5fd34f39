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

from pathlib import Path

from reconciler.edges.state import jsonfile
from reconciler.model.ledger import Ledger

NAME = "retention.json"


def path(state_dir: Path) -> Path:
    return state_dir / NAME


def read(state_dir: Path) -> Ledger:
    """The ledger of ``state_dir``; an empty one when there is none or it cannot be read."""
    return jsonfile.read(path(state_dir), Ledger.from_json, Ledger,
                         "retention.ledger.unreadable")


def write(state_dir: Path, ledger: Ledger) -> None:
    jsonfile.write(path(state_dir), ledger.to_json())
