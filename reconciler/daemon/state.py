"""The daemon's status file, ``<state_dir>/status.json``: what ``reconciler status`` shows.

Written whole and atomically (``edges.atomic``) at every change of phase, so a reader
never sees half a file and a daemon restarted after a crash reads back where it stopped:
the applied revision, the rejected one, the last pass and its outcomes, and whether each
of the host's kernels (running and installed) has its driver ready for Falco.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.edges import atomic
from reconciler.errors import ConfigError
from reconciler.model import timestamps

STATUS_NAME = "status.json"
KEEP_ERRORS = 20


def now() -> str:
    return timestamps.now("milliseconds")


@dataclass(frozen=True)
class ErrorRecord:
    at: str
    message: str
    revision: str | None = None
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "message": self.message, "revision": self.revision,
                "transient": self.transient}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorRecord:
        return cls(str(data.get("at", "")), str(data.get("message", "")),
                   data.get("revision"), bool(data.get("transient", False)))


@dataclass(frozen=True)
class PassRecord:
    """One pass: why it ran, at which revision, how it ended, one outcome per change."""

    number: int
    trigger: tuple[str, ...]
    started_at: str
    revision: str | None = None
    finished_at: str | None = None
    result: str = "running"  # running | ok | failed | rejected | error | skipped
    seconds: float = 0.0
    message: str = ""
    transient: bool = False
    outcomes: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "trigger": list(self.trigger), "revision": self.revision,
            "startedAt": self.started_at, "finishedAt": self.finished_at,
            "result": self.result, "seconds": round(self.seconds, 3), "message": self.message,
            "transient": self.transient, "outcomes": [dict(o) for o in self.outcomes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassRecord:
        return cls(
            number=int(data.get("number", 0)), trigger=tuple(data.get("trigger", ())),
            started_at=str(data.get("startedAt", "")), revision=data.get("revision"),
            finished_at=data.get("finishedAt"), result=str(data.get("result", "")),
            seconds=float(data.get("seconds", 0.0)), message=str(data.get("message", "")),
            transient=bool(data.get("transient", False)),
            outcomes=tuple(data.get("outcomes", ())),
        )


@dataclass(frozen=True)
class KernelDriver:
    """One of the host's kernels (``uname -r``) as the last pass that planned saw it: the
    driver its Falco will ask for, and whether that is in the store, verified and fitting."""

    release: str
    running: bool
    artifact: str  # the store path
    ready: bool

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "running": self.running, "artifact": self.artifact,
                "ready": self.ready}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KernelDriver:
        return cls(str(data.get("release", "")), bool(data.get("running")),
                   str(data.get("artifact", "")), bool(data.get("ready")))


@dataclass(frozen=True)
class Rejection:
    """A revision that will not be applied until it changes (bad manifests, bad signature)."""

    revision: str
    reason: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class AlertCounts:
    """The alert sender's deliveries (an event to one target) so far, as of the last pass."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0

    def to_json(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertCounts:
        return cls(int(data.get("sent", 0)), int(data.get("failed", 0)),
                   int(data.get("dropped", 0)))


@dataclass(frozen=True)
class Status:
    pid: int | None = None
    started_at: str | None = None
    serving: str | None = None
    phase: str = "starting"  # starting | idle | running | suspended | stopped
    suspended: bool = False
    head_revision: str | None = None
    applied_revision: str | None = None
    applied_at: str | None = None
    rejected: Rejection | None = None
    current: PassRecord | None = None
    last_pass: PassRecord | None = None
    # The last pass that changed something: a quiet pass after it does not hide it.
    last_changes: PassRecord | None = None
    errors: tuple[ErrorRecord, ...] = ()
    next_retry_at: str | None = None
    retry_attempt: int = 0
    passes: int = 0
    container: str | None = None  # the Falco container's name, for recovery after a crash
    kernels: tuple[KernelDriver, ...] = ()
    alerts: AlertCounts | None = None  # None: no alert targets configured
    held: str | None = None  # why the rollout keeps this host off the head revision

    def with_error(self, error: ErrorRecord) -> Status:
        return replace(self, errors=(*self.errors, error)[-KEEP_ERRORS:])

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "startedAt": self.started_at, "serving": self.serving,
            "phase": self.phase, "suspended": self.suspended,
            "headRevision": self.head_revision, "appliedRevision": self.applied_revision,
            "appliedAt": self.applied_at,
            "rejected": self.rejected.to_json() if self.rejected else None,
            "currentPass": self.current.to_json() if self.current else None,
            "lastPass": self.last_pass.to_json() if self.last_pass else None,
            "lastChanges": self.last_changes.to_json() if self.last_changes else None,
            "errors": [e.to_json() for e in self.errors],
            "nextRetryAt": self.next_retry_at, "retryAttempt": self.retry_attempt,
            "passes": self.passes, "container": self.container,
            "kernels": [k.to_json() for k in self.kernels],
            "alerts": self.alerts.to_json() if self.alerts else None,
            "held": self.held,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Status:
        rejected = data.get("rejected")
        current = data.get("currentPass")
        last = data.get("lastPass")
        changes = data.get("lastChanges")
        return cls(
            pid=data.get("pid"), started_at=data.get("startedAt"), serving=data.get("serving"),
            phase=str(data.get("phase", "stopped")), suspended=bool(data.get("suspended")),
            head_revision=data.get("headRevision"),
            applied_revision=data.get("appliedRevision"), applied_at=data.get("appliedAt"),
            rejected=Rejection(str(rejected["revision"]), str(rejected["reason"]),
                               str(rejected["at"])) if rejected else None,
            current=PassRecord.from_json(current) if current else None,
            last_pass=PassRecord.from_json(last) if last else None,
            last_changes=PassRecord.from_json(changes) if changes else None,
            errors=tuple(ErrorRecord.from_json(e) for e in data.get("errors", ())),
            next_retry_at=data.get("nextRetryAt"), retry_attempt=int(data.get("retryAttempt", 0)),
            passes=int(data.get("passes", 0)), container=data.get("container"),
            kernels=tuple(KernelDriver.from_json(k) for k in data.get("kernels", ())),
            alerts=AlertCounts.from_json(data["alerts"]) if data.get("alerts") else None,
            held=data.get("held"),
        )


def path(state_dir: Path) -> Path:
    return state_dir / STATUS_NAME


def write(state_dir: Path, status: Status) -> None:
    body = json.dumps(status.to_json(), indent=2, sort_keys=False) + "\n"
    atomic.write_bytes(path(state_dir), body.encode())


def read(state_dir: Path) -> Status | None:
    """The last status written there, or None if no daemon ever ran on this state dir."""
    try:
        text = path(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path(state_dir)}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path(state_dir)} is not valid JSON: {exc}") from exc
    return Status.from_json(data)
