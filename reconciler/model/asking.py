"""Asking build hosts, the rules (no I/O): when an artifact is asked for again, what each
build host's answer makes of it, and where each artifact then stands.

Each artifact is asked for at most once per backoff: 30 s after the first request,
doubling to 5 min, so a pass every few seconds does not POST every time (a build host's
``Retry-After`` lengthens it); the record stays while the artifact is still needed and goes
once it is not. Upstreams are asked in order; what one refuses goes to the next.
``edges.http.requester`` does the POSTs and keeps the records on disk.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested, Verdict

FIRST_WAIT = 30.0
LONGEST_WAIT = 300.0


def wait_after(attempts: int) -> float:
    """Seconds before an artifact asked for ``attempts`` times is asked for again."""
    return min(LONGEST_WAIT, FIRST_WAIT * float(2 ** max(0, attempts - 1)))


class Standing(enum.StrEnum):
    PENDING = "pending"  # a build host took it (or has it): wait, then fetch
    REJECTED = "rejected"  # every build host refused it; ``detail`` says why
    UNREACHABLE = "unreachable"  # no build host answered (or asked us to wait): retry
    NO_BUILD_HOST = "no build host"  # no upstream takes build requests


@dataclass(frozen=True)
class KeyStanding:
    key: ArtifactKey
    standing: Standing
    upstream: str = ""  # the build host that took it
    detail: str = ""
    next_at: float = 0.0  # epoch seconds: not asked again before then
    posted: bool = False  # asked in this call (else a request made earlier still stands)

    @property
    def transient(self) -> bool:
        return self.standing in (Standing.PENDING, Standing.UNREACHABLE)


@dataclass(frozen=True)
class RequestOutcome:
    keys: tuple[KeyStanding, ...] = ()

    def standing(self, key: ArtifactKey) -> KeyStanding | None:
        return next((k for k in self.keys if k.key == key), None)


@dataclass(frozen=True)
class Sent:
    """One artifact asked for: how often, last when, and what the build hosts said."""

    path: str
    standing: Standing
    upstream: str
    detail: str
    attempts: int
    sent_at: float
    next_at: float

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "standing": self.standing.value, "upstream": self.upstream,
                "detail": self.detail, "attempts": self.attempts, "sentAt": self.sent_at,
                "nextAt": self.next_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sent:
        return cls(str(data["path"]), Standing(str(data["standing"])),
                   str(data.get("upstream", "")), str(data.get("detail", "")),
                   int(data.get("attempts", 1)), float(data.get("sentAt", 0.0)),
                   float(data.get("nextAt", 0.0)))


def nobody_builds(keys: Sequence[Requested]) -> RequestOutcome:
    """Where ``keys`` stand when no upstream takes build requests."""
    return RequestOutcome(tuple(
        KeyStanding(k.key, Standing.NO_BUILD_HOST,
                    detail="no upstream takes build requests (build_requests: true)")
        for k in keys))


@dataclass
class Round:
    """One call's asking, answer by answer: what is left to ask, what each build host
    said of each path, how long any asked us to wait, and why some took nothing."""

    keys: Sequence[Requested]
    earlier: Mapping[str, Sent]  # the records of artifacts still wanted
    clock: float
    answers: dict[str, tuple[Standing, str, str]] = field(default_factory=dict)
    waits: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    left: list[Requested] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.left = self.due()

    def due(self) -> list[Requested]:
        """The keys never asked for, or whose backoff has passed."""
        return [k for k in self.keys if k.key.relpath not in self.earlier
                or self.clock >= self.earlier[k.key.relpath].next_at]

    def failed(self, problem: str, wait: float = 0.0) -> None:
        """A build host took nothing (unreachable, or an answer without verdicts)."""
        self.problems.append(problem)
        for item in self.left:
            self.waits[item.key.relpath] = max(self.waits.get(item.key.relpath, 0.0), wait)

    def answered(self, upstream: str, verdicts: Mapping[str, tuple[Verdict, str]]) -> None:
        """A build host's verdicts: what it refused goes on to the next one."""
        still = []
        for item in self.left:
            verdict, reason = verdicts.get(item.key.relpath, (Verdict.REJECTED, "no verdict"))
            if verdict is Verdict.REJECTED:
                self.answers[item.key.relpath] = (Standing.REJECTED, upstream,
                                                  f"{upstream}: {reason}")
                still.append(item)
            else:
                self.answers[item.key.relpath] = (Standing.PENDING, upstream, verdict.value)
        self.left = still

    def outcome(self) -> tuple[tuple[Sent, ...], RequestOutcome]:
        """The records to keep (one per key: a new one for each key asked now) and where
        each key stands."""
        due = self.due()
        records = []
        standings = []
        for item in self.keys:
            relpath = item.key.relpath
            before = self.earlier.get(relpath)
            if item in due:
                default = (Standing.UNREACHABLE, "", "; ".join(self.problems) or "not asked")
                standing, taker, detail = self.answers.get(relpath, default)
                if standing is Standing.REJECTED and self.problems:
                    detail += "; " + "; ".join(self.problems)
                attempts = (before.attempts if before else 0) + 1
                next_at = self.clock + max(wait_after(attempts), self.waits.get(relpath, 0.0))
                record = Sent(relpath, standing, taker, detail, attempts, self.clock, next_at)
            else:
                assert before is not None
                record = before
            records.append(record)
            standings.append(KeyStanding(item.key, record.standing, record.upstream,
                                         record.detail, record.next_at, posted=item in due))
        return tuple(records), RequestOutcome(tuple(standings))
