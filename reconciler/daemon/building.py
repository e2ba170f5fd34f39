"""What the daemon is building right now: ``<state_dir>/building.json``.

``reconciler status`` answers "what is it doing?" with each build in progress and its step
("compile, for 41 s"). The builds report their steps from their own threads; this file is
written whole and atomically at each step (a handful per build), apart from status.json,
which the loop alone writes, so neither waits on the other. A build leaves the file when
it is published or fails; the daemon empties it when it starts.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from reconciler import logs
from reconciler.builder import BuildEvent, Phase
from reconciler.edges import atomic
from reconciler.model import timestamps

log = logs.get(__name__)

BUILDING_NAME = "building.json"


class Building:
    """The builds in progress, kept in the state dir as they move through their steps."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / BUILDING_NAME
        self._lock = threading.Lock()
        self._builds: dict[str, dict[str, str]] = {}
        self._write()

    def event(self, event: BuildEvent) -> None:
        with self._lock:
            over = event.phase is Phase.FAILED or (
                event.phase is Phase.DONE and str(event.step) == "publish")
            if over:
                self._builds.pop(event.artifact, None)
            else:
                known = self._builds.get(event.artifact)
                self._builds[event.artifact] = {
                    "artifact": event.artifact, "step": str(event.step),
                    "since": known["since"] if known else timestamps.now(),
                    "stepSince": timestamps.now() if event.phase is Phase.STARTED
                    else (known or {}).get("stepSince", timestamps.now()),
                }
            self._write()

    def _write(self) -> None:
        body = json.dumps({"builds": list(self._builds.values())}, indent=2) + "\n"
        try:
            atomic.write_bytes(self._path, body.encode())
        except OSError as exc:  # status is a convenience: a full disk must not fail a build
            log.warning("building.unwritable", path=str(self._path), error=str(exc))


def read(state_dir: Path) -> list[dict[str, Any]]:
    """The builds in progress as the daemon last wrote them ([] when none or unreadable)."""
    try:
        data = json.loads((state_dir / BUILDING_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    builds = data.get("builds") if isinstance(data, dict) else None
    return [b for b in builds if isinstance(b, dict)] if isinstance(builds, list) else []
