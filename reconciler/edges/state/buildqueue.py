"""The build host's queue of requested artifacts: ``<state_dir>/build-queue.json``.

The driver server's workers add to it (``offer``), the daemon's pass reads it into the
desired state and settles it once each artifact is in the store or failed for good
(``settle``); the rules of both are ``model.queueing``'s, this module keeps the file.
Written whole and atomically (``edges.atomic``) at every change, so a restart keeps what
was asked and ``reconciler status`` never reads half a file. One process writes it, the
daemon that holds the state dir's lock; a lock orders its threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.edges import atomic
from reconciler.errors import ConfigError
from reconciler.model import queueing, timestamps
from reconciler.model.buildrequests import Requested, Verdict
from reconciler.model.queueing import Finished, QueueState

QUEUE_NAME = "build-queue.json"


def path(state_dir: Path) -> Path:
    return state_dir / QUEUE_NAME


def read(state_dir: Path) -> QueueState:
    """The queue as last written; empty when there is none."""
    try:
        text = path(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return QueueState()
    except OSError as exc:
        raise ConfigError(f"cannot read {path(state_dir)}: {exc.strerror}") from exc
    try:
        return QueueState.from_json(json.loads(text))
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path(state_dir)} is not a build queue: {exc}") from exc


def _write(state_dir: Path, queue: QueueState) -> None:
    body = json.dumps(queue.to_json(), indent=2) + "\n"
    atomic.write_bytes(path(state_dir), body.encode())


class BuildQueue:
    """The queue of one state dir, bounded to ``limit`` pending artifacts."""

    def __init__(self, state_dir: Path, limit: int) -> None:
        self.state_dir = state_dir
        self.limit = max(1, limit)
        self._lock = threading.Lock()

    def read(self) -> QueueState:
        with self._lock:
            return read(self.state_dir)

    def offer(self, host: str, client: str,
              items: Sequence[Requested]) -> dict[str, Verdict] | None:
        """Queue ``items`` for ``host``: a verdict per path, or None (nothing queued) when
        the new ones would not fit (``model.queueing.offer``)."""
        with self._lock:
            done = queueing.offer(read(self.state_dir), host, client, items,
                                  limit=self.limit, now=timestamps.now())
            if done is None:
                return None
            queue, verdicts = done
            _write(self.state_dir, queue)
            return verdicts

    def settle(self, done: Mapping[str, str | None]) -> tuple[Finished, ...]:
        """Take the paths of ``done`` off the queue: None for built (in the store), else
        why it failed for good. Returns what was finished now."""
        with self._lock:
            queue, finished = queueing.settle(read(self.state_dir), done, at=timestamps.now())
            if finished:
                _write(self.state_dir, queue)
            return finished
