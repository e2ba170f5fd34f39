"""The build host's queue of requested artifacts, the rules (no I/O): what an offer of
artifacts makes of the queue, and what settling finished ones does. ``edges.state.buildqueue``
keeps it on disk and orders the threads that change it.

An offer is all or nothing: if its new artifacts would not fit under the limit, nothing is
queued (the caller answers 503). An artifact already waiting gains the asking host and
client. Settled ones leave the queue for a short history of the last ``KEEP_FINISHED``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.model import artifacts
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested, Verdict

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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueState:
        return cls(tuple(Entry.from_json(e) for e in data.get("pending", ())),
                   tuple(Finished.from_json(f) for f in data.get("finished", ())))


def offer(queue: QueueState, host: str, client: str, items: Sequence[Requested], *,
          limit: int, now: str) -> tuple[QueueState, dict[str, Verdict]] | None:
    """``queue`` with ``items`` queued for ``host`` and a verdict per path, or None
    (nothing queued) when the new ones would not fit under ``limit``."""
    pending = {e.path: e for e in queue.pending}
    verdicts: dict[str, Verdict] = {}
    new = [i for i in dict.fromkeys(items) if i.key.relpath not in pending]
    if len(pending) + len({i.key.relpath for i in new}) > limit:
        return None
    for item in items:
        relpath = item.key.relpath
        entry = pending.get(relpath)
        if entry is None:
            pending[relpath] = Entry(relpath, item.uname_release, (host,), (client,), now)
            verdicts[relpath] = Verdict.QUEUED
            continue
        pending[relpath] = replace(
            entry, hosts=tuple(dict.fromkeys((*entry.hosts, host))),
            clients=tuple(dict.fromkeys((*entry.clients, client))),
            uname_release=entry.uname_release or item.uname_release)
        verdicts.setdefault(relpath, Verdict.ALREADY_QUEUED)
    return replace(queue, pending=tuple(pending.values())), verdicts


def settle(queue: QueueState, done: Mapping[str, str | None], *,
           at: str) -> tuple[QueueState, tuple[Finished, ...]]:
    """``queue`` without the paths of ``done`` (None: built, in the store; else why it
    failed for good), and what was finished now."""
    finished = tuple(
        Finished(e.path, e.hosts, BUILT if done[e.path] is None else FAILED,
                 done[e.path] or "", at)
        for e in queue.pending if e.path in done)
    if not finished:
        return queue, ()
    left = tuple(e for e in queue.pending if e.path not in done)
    return QueueState(left, (*queue.finished, *finished)[-KEEP_FINISHED:]), finished
