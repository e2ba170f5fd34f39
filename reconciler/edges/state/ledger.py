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

import json
from pathlib import Path

from reconciler import logs
from reconciler.edges import atomic
from reconciler.model.ledger import Ledger

log = logs.get(__name__)

NAME = "retention.json"


def path(state_dir: Path) -> Path:
    return state_dir / NAME


def read(state_dir: Path) -> Ledger:
    """The ledger of ``state_dir``; an empty one when there is none or it cannot be read."""
    target = path(state_dir)
    try:
        return Ledger.from_json(json.loads(target.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Ledger()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("retention.ledger.unreadable", path=str(target), error=str(exc))
        return Ledger()


def write(state_dir: Path, ledger: Ledger) -> None:
    body = json.dumps(ledger.to_json(), indent=2) + "\n"
    atomic.write_bytes(path(state_dir), body.encode("utf-8"))
