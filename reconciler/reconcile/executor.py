"""Apply a plan: run every change, record an outcome per change, never stop at the first.

Order is the plan's: builds first, then container changes, then deletions. A container
change whose driver did not build is skipped (the old Falco keeps running), as is one
that would replace a container we did not create without adoption. Drivers are built
by ``reconciler.build``; containers are changed by ``reconciler.falco``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler import logs
from reconciler.builder import BuildOutcome, BuildRequest
from reconciler.edges.store import Store
from reconciler.errors import ReconcilerError
from reconciler.model.artifacts import ArtifactKey
from reconciler.reconcile.desired import DesiredState
from reconciler.reconcile.plan import Change, Kind, Op, Plan

log = logs.get(__name__)


class Result(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    change: Change
    result: Result
    message: str = ""
    seconds: float = 0.0
    transient: bool = False

    def to_json(self) -> dict[str, object]:
        return {**self.change.to_json(), "result": self.result.value, "message": self.message,
                "seconds": round(self.seconds, 3)}


Builder = Callable[[Sequence[BuildRequest]], Sequence[BuildOutcome]]
ContainerApplier = Callable[[Change, DesiredState], str]


def _no_module(change: Change, desired: DesiredState) -> str:
    raise ReconcilerError(f"no module loader configured for {change.name}")


@dataclass
class Executor:
    store: Store
    build: Builder
    apply_container: ContainerApplier
    load_module: ContainerApplier = _no_module
    outcomes: list[Outcome] = field(default_factory=list)

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        event = "change.applied" if outcome.result is Result.OK else f"change.{outcome.result}"
        log.info(event, kind=outcome.change.kind.value, op=outcome.change.op.value,
                 name=outcome.change.name, message=outcome.message,
                 seconds=round(outcome.seconds, 3))

    def _builds(self, changes: Sequence[Change], desired: DesiredState) -> set[ArtifactKey]:
        """Build every artifact; returns the ones that failed."""
        by_request: dict[tuple[object, str], list[Change]] = {}
        for change in changes:
            assert change.artifact is not None
            by_request.setdefault(
                (change.artifact.kernel, change.artifact.driver_version), []).append(change)
        requests = []
        for (_kernel, _dv), group in by_request.items():
            first = group[0].artifact
            assert first is not None
            urls: list[str] = []
            for change in group:
                wanted = desired.artifact(change.artifact) if change.artifact else None
                urls += [u for u in (wanted.kernel_urls if wanted else ()) if u not in urls]
            requests.append(BuildRequest(
                kernel=first.kernel, driver_version=first.driver_version,
                kinds=tuple(c.artifact.kind for c in group if c.artifact is not None),
                kernel_urls=tuple(urls),
            ))
        failed: set[ArtifactKey] = set()
        start = time.monotonic()
        results = self.build(requests) if requests else ()
        for request, result in zip(requests, results, strict=True):
            group = by_request[(request.kernel, request.driver_version)]
            for change in group:
                if result.error is None:
                    self._record(Outcome(change, Result.OK, "built and published",
                                         time.monotonic() - start))
                else:
                    assert change.artifact is not None
                    failed.add(change.artifact)
                    self._record(Outcome(change, Result.FAILED, str(result.error),
                                         time.monotonic() - start,
                                         transient=result.error.transient))
        return failed

    def run(self, plan: Plan, desired: DesiredState, *, adopt: bool = False) -> list[Outcome]:
        builds = [c for c in plan.changes if c.op is Op.BUILD]
        failed = self._builds(builds, desired)
        for change in plan.changes:
            if change.op is Op.BUILD:
                continue
            start = time.monotonic()
            if change.op is not Op.DELETE and change.artifact in failed:
                self._record(Outcome(change, Result.SKIPPED,
                                     f"driver {change.artifact} is not ready; Falco left as is"))
                continue
            if change.needs_adopt and not adopt:
                self._record(Outcome(change, Result.SKIPPED,
                                     "not ours: set falco.adopt: true or pass --adopt"))
                continue
            try:
                if change.op is Op.DELETE:
                    assert change.artifact is not None
                    self.store.remove(change.artifact)
                    message = "deleted"
                elif change.kind is Kind.DRIVER:
                    message = self.load_module(change, desired)
                else:
                    message = self.apply_container(change, desired)
            except ReconcilerError as exc:
                self._record(Outcome(change, Result.FAILED, str(exc), time.monotonic() - start,
                                     transient=exc.transient))
                if change.kind is Kind.DRIVER and change.artifact is not None:
                    failed.add(change.artifact)  # a module not inserted: Falco must wait
                continue
            self._record(Outcome(change, Result.OK, message, time.monotonic() - start))
        return self.outcomes
