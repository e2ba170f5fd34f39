"""The build host's queue of requested artifacts: ``<state_dir>/build-queue.json``.

The driver server's workers add to it (``offer``), the daemon's pass reads it into the
desired state and settles it once each artifact is in the store or failed for good
(``settle``). Written whole and atomically (``edges.atomic``) at every change, so a
restart keeps what was asked and ``reconciler status`` never reads half a file. One
process writes it, the daemon that holds the state dir's lock; a lock orders its threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.edges import atomic
from reconciler.errors import ConfigError
from reconciler.model import artifacts, timestamps
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested, Verdict

QUEUE_NAME = "build-queue.json"
KEEP_FINISHED = 20
BUILT = "built"
FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    """An artifact waiting to be built, and who asked (host names and peer addresses)."""

    path: str
    uname_release: str
    hosts: tuple[str, ...]
    clients: tuple[str, ...]
    queued_at: str

    @property
    def key(self) -> ArtifactKey | None:
        return artifacts.parse_relpath(self.path)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "unameRelease": self.uname_release, "hosts": list(self.hosts),
                "clients": list(self.clients), "queuedAt": self.queued_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        return cls(str(data["path"]), str(data.get("unameRelease", "")),
                   tuple(map(str, data.get("hosts", ()))),
                   tuple(map(str, data.get("clients", ()))), str(data.get("queuedAt", "")))


@dataclass(frozen=True)
class Finished:
    path: str
    hosts: tuple[str, ...]
    result: str  # built | failed
    why: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "hosts": list(self.hosts), "result": self.result,
                "why": self.why, "at": self.at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finished:
        return cls(str(data["path"]), tuple(map(str, data.get("hosts", ()))),
                   str(data.get("result", "")), str(data.get("why", "")), str(data.get("at", "")))


@dataclass(frozen=True)
class QueueState:
    pending: tuple[Entry, ...] = ()
    finished: tuple[Finished, ...] = ()  # the last few, newest last

    def to_json(self) -> dict[str, Any]:
        return {"pending": [e.to_json() for e in self.pending],
                "finished": [f.to_json() for f in self.finished]}

    def requested(self) -> tuple[tuple[Requested, tuple[str, ...]], ...]:
        """Each pending artifact with the hosts that asked for it (for the desired state)."""
        found = []
        for entry in self.pending:
            key = entry.key
            if key is not None:
                found.append((Requested(key, entry.uname_release), entry.hosts))
        return tuple(found)


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
        data = json.loads(text)
        return QueueState(tuple(Entry.from_json(e) for e in data.get("pending", ())),
                          tuple(Finished.from_json(f) for f in data.get("finished", ())))
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
        the new ones would not fit."""
        with self._lock:
            queue = read(self.state_dir)
            pending = {e.path: e for e in queue.pending}
            verdicts: dict[str, Verdict] = {}
            new = [i for i in dict.fromkeys(items) if i.key.relpath not in pending]
            if len(pending) + len({i.key.relpath for i in new}) > self.limit:
                return None
            for item in items:
                relpath = item.key.relpath
                entry = pending.get(relpath)
                if entry is None:
                    pending[relpath] = Entry(relpath, item.uname_release, (host,), (client,),
                                             timestamps.now())
                    verdicts[relpath] = Verdict.QUEUED
                    continue
                pending[relpath] = replace(
                    entry, hosts=tuple(dict.fromkeys((*entry.hosts, host))),
                    clients=tuple(dict.fromkeys((*entry.clients, client))),
                    uname_release=entry.uname_release or item.uname_release)
                verdicts.setdefault(relpath, Verdict.ALREADY_QUEUED)
            _write(self.state_dir, replace(queue, pending=tuple(pending.values())))
            return verdicts

    def settle(self, done: Mapping[str, str | None]) -> tuple[Finished, ...]:
        """Take the paths of ``done`` off the queue: None for built (in the store), else
        why it failed for good. Returns what was finished now."""
        with self._lock:
            queue = read(self.state_dir)
            at = timestamps.now()
            finished = tuple(
                Finished(e.path, e.hosts, BUILT if done[e.path] is None else FAILED,
                         done[e.path] or "", at)
                for e in queue.pending if e.path in done)
            if not finished:
                return ()
            left = tuple(e for e in queue.pending if e.path not in done)
            _write(self.state_dir, QueueState(
                left, (*queue.finished, *finished)[-KEEP_FINISHED:]))
            return finished
