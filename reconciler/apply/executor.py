"""Apply a plan: run every change, record an outcome per change, never stop at the first.

Order is the plan's: fetches first, then builds, then the kernel module, then container
changes, then deletions. A fetch that no upstream could serve verified falls back to a
build when the host builds what upstreams lack (``build: missing``; its outcome says so).
A container change whose driver is not ready is skipped (the old Falco keeps running), as
is one that would replace a container we did not create without adoption.
A request (``build: never``) asks the build hosts (``request``) and is pending until the
artifact arrives: Falco waits for it as for a build.
What builds, deploys and loads modules is given (``runtime`` wires the real ones); each
``run`` starts a fresh list of outcomes.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler import logs
from reconciler.builder import BuildOutcome, BuildRequest
from reconciler.desired.state import DesiredState
from reconciler.edges.store.local import Store
from reconciler.errors import DeployError, ReconcilerError, UpstreamError
from reconciler.model.artifacts import ArtifactKey, KernelId
from reconciler.model.asking import RequestOutcome, Standing
from reconciler.model.buildrequests import Requested
from reconciler.plan.diff import Change, ChangeKind, Op, Plan, Reason

log = logs.get(__name__)


class OutcomeResult(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    PENDING = "pending"  # asked for; not here yet


@dataclass(frozen=True)
class Outcome:
    change: Change
    result: OutcomeResult
    message: str = ""
    seconds: float = 0.0
    transient: bool = False
    rolled_back: bool = False  # a Falco that did not start; the previous one was put back

    def to_json(self) -> dict[str, object]:
        return {**self.change.to_json(), "result": self.result.value, "message": self.message,
                "seconds": round(self.seconds, 3)}


Builder = Callable[[Sequence[BuildRequest]], Sequence[BuildOutcome]]
ChangeApplier = Callable[[Change, DesiredState], str]
# Ask the build hosts for artifacts, as this host (edges.http.requester.request_builds).
Requester = Callable[[Sequence[Requested], str], RequestOutcome]


def _no_fetch(change: Change, _desired: DesiredState) -> str:
    raise UpstreamError(f"{change.name}: no upstreams are configured to fetch from")


@dataclass(frozen=True)
class Executor:
    store: Store
    build: Builder
    apply_container: ChangeApplier
    load_module: ChangeApplier
    request: Requester | None = None
    fetch: ChangeApplier = _no_fetch
    build_fallback: bool = True  # build what every upstream failed to give (build: missing)

    def run(self, plan: Plan, desired: DesiredState, *, adopt: bool = False) -> list[Outcome]:
        outcomes: list[Outcome] = []
        fallback, failed = self._fetches([c for c in plan.changes if c.op is Op.FETCH],
                                         desired, outcomes)
        failed |= self._builds([*(c for c, _why in fallback),
                                *(c for c in plan.changes if c.op is Op.BUILD)],
                               desired, outcomes,
                               {c.artifact: why for c, why in fallback if c.artifact})
        failed |= self._requests([c for c in plan.changes if c.op is Op.REQUEST], desired,
                                 outcomes)
        for change in plan.changes:
            if change.op in (Op.BUILD, Op.FETCH, Op.REQUEST):
                continue
            start = time.monotonic()
            if change.op is not Op.DELETE and change.artifact in failed:
                _record(outcomes, Outcome(
                    change, OutcomeResult.SKIPPED,
                    f"driver {change.artifact} is not ready; Falco left as is"))
                continue
            if change.needs_adopt and not adopt:
                _record(outcomes, Outcome(change, OutcomeResult.SKIPPED,
                                          "not ours: set falco.adopt: true or pass --adopt"))
                continue
            try:
                if change.op is Op.DELETE:
                    assert change.artifact is not None
                    self.store.remove(change.artifact)
                    message = "deleted"
                elif change.kind is ChangeKind.DRIVER:
                    message = self.load_module(change, desired)
                else:
                    message = self.apply_container(change, desired)
            except ReconcilerError as exc:
                _record(outcomes, Outcome(
                    change, OutcomeResult.FAILED, str(exc), time.monotonic() - start,
                    transient=exc.transient,
                    rolled_back=isinstance(exc, DeployError) and exc.restored))
                if change.artifact is not None and (
                        change.kind is ChangeKind.DRIVER or change.reason is Reason.LOADER_RUN):
                    # A module not inserted, a loader run that failed: Falco must wait.
                    failed.add(change.artifact)
                continue
            _record(outcomes, Outcome(change, OutcomeResult.OK, message,
                                      time.monotonic() - start))
        return outcomes

    def _fetches(self, changes: Sequence[Change], desired: DesiredState,
                 outcomes: list[Outcome]) -> tuple[list[tuple[Change, str]], set[ArtifactKey]]:
        """Fetch every artifact; returns the changes to build instead, with why (each
        upstream failed and this host builds), and the artifacts that are not ready."""
        fallback: list[tuple[Change, str]] = []
        failed: set[ArtifactKey] = set()
        for change in changes:
            assert change.artifact is not None
            start = time.monotonic()
            try:
                message = self.fetch(change, desired)
            except ReconcilerError as exc:
                if self.build_fallback:
                    log.info("fetch.fallback", name=change.name, error=str(exc))
                    fallback.append((change, str(exc)))
                    continue
                failed.add(change.artifact)
                _record(outcomes, Outcome(change, OutcomeResult.FAILED,
                                          f"{exc}; this host does not build (build: never)",
                                          time.monotonic() - start, transient=exc.transient))
                continue
            _record(outcomes, Outcome(change, OutcomeResult.OK, message,
                                      time.monotonic() - start))
        return fallback, failed

    def _builds(self, changes: Sequence[Change], desired: DesiredState,
                outcomes: list[Outcome],
                fetch_failed: Mapping[ArtifactKey, str] | None = None) -> set[ArtifactKey]:
        """Build every artifact (``fetch_failed``: those no upstream gave, and why);
        returns the ones that failed."""
        failed: set[ArtifactKey] = set()
        by_request: dict[tuple[KernelId, str], list[Change]] = {}
        for change in changes:
            assert change.artifact is not None
            if change.reason in (Reason.UNSAFE_PATH, Reason.UNAVAILABLE, Reason.UPSTREAM_DOWN,
                                 Reason.NO_HEADERS):
                # Building it would publish where nothing is ever served: say so, once.
                # An upstream that did not answer may have it next time: retried, not held.
                failed.add(change.artifact)
                _record(outcomes, Outcome(change, OutcomeResult.FAILED, change.reason_text,
                                          transient=change.reason is Reason.UPSTREAM_DOWN))
                continue
            by_request.setdefault(
                (change.artifact.kernel, change.artifact.driver_version), []).append(change)
        requests = []
        for (kernel, driver_version), group in by_request.items():
            urls: list[str] = []
            release = ""
            for change in group:
                wanted = desired.artifact(change.artifact) if change.artifact else None
                urls += [u for u in (wanted.kernel_urls if wanted else ()) if u not in urls]
                # One kernel, one real release: every kind of it carries the same.
                release = release or (wanted.uname_release if wanted else "")
            signing = next((w.signing for w in (desired.artifact(c.artifact) for c in group
                                                if c.artifact) if w and w.signing), None)
            falcos = sorted({falco for c in group
                             if c.artifact and (w := desired.artifact(c.artifact))
                             for falco in w.falcos})
            requests.append(BuildRequest(
                kernel=kernel, driver_version=driver_version,
                kinds=tuple(c.artifact.kind for c in group if c.artifact is not None),
                kernel_urls=tuple(urls), uname_release=release, signing=signing,
                falcos=tuple(falcos),
            ))
        start = time.monotonic()
        results = self.build(requests) if requests else ()
        for request, result in zip(requests, results, strict=True):
            for change in by_request[(request.kernel, request.driver_version)]:
                assert change.artifact is not None
                gave_none = (fetch_failed or {}).get(change.artifact)
                why = f"fetch failed ({gave_none}), built instead: " if gave_none else ""
                if result.error is None:
                    _record(outcomes, Outcome(change, OutcomeResult.OK,
                                              f"{why}built and published",
                                              time.monotonic() - start))
                else:
                    failed.add(change.artifact)
                    _record(outcomes, Outcome(change, OutcomeResult.FAILED,
                                              f"{why}{result.error}",
                                              time.monotonic() - start,
                                              transient=result.error.transient))
        return failed


    def _requests(self, changes: Sequence[Change], desired: DesiredState,
                  outcomes: list[Outcome]) -> set[ArtifactKey]:
        """Ask for every artifact at once; all of them are not ready in this pass."""
        keys = [c.artifact for c in changes if c.artifact is not None]
        if not keys:
            return set()
        if self.request is None:
            for change in changes:
                _record(outcomes, Outcome(change, OutcomeResult.FAILED,
                                          "this host does not build, and nothing asks"))
            return set(keys)
        wanted = []
        for key in keys:
            found = desired.artifact(key)
            wanted.append(Requested(key, found.uname_release if found else ""))
        try:
            answer = self.request(wanted, desired.hostname)
        except ReconcilerError as exc:  # a missing secret: no retry mends it
            for change in changes:
                _record(outcomes, Outcome(change, OutcomeResult.FAILED, str(exc),
                                          transient=exc.transient))
            return set(keys)
        for change in changes:
            assert change.artifact is not None
            standing = answer.standing(change.artifact)
            if standing is None:
                _record(outcomes, Outcome(change, OutcomeResult.FAILED, "not asked for"))
            elif standing.standing is Standing.PENDING:
                asked = "asked" if standing.posted else "asked earlier"
                _record(outcomes, Outcome(
                    change, OutcomeResult.PENDING,
                    f"{asked}: {standing.upstream} says {standing.detail}; waiting for it",
                    transient=True))
            else:
                _record(outcomes, Outcome(change, OutcomeResult.FAILED,
                                          f"{standing.standing.value}: {standing.detail}",
                                          transient=standing.transient))
        return set(keys)


def _record(outcomes: list[Outcome], outcome: Outcome) -> None:
    outcomes.append(outcome)
    event = "change.applied" if outcome.result is OutcomeResult.OK else (
        f"change.{outcome.result}")
    # A failure is said once, here, at error level, with its whole cause; the pass's own
    # events only count failures.
    emit = log.error if outcome.result is OutcomeResult.FAILED else log.info
    emit(event, kind=outcome.change.kind.value, op=outcome.change.op.value,
         name=outcome.change.name, message=outcome.message, seconds=round(outcome.seconds, 3))
