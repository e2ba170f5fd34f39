"""What in a pass needs a person: the alert events a pass report means. Pure.

``detect`` reads one report (and what the daemon applied before it) and says which events
to send, remembering in ``Seen`` what it already said, so a failure that lasts does not
alert at every retry and an installed kernel without its driver alerts once per revision:

- ``revision-applied``: a pass succeeded at a revision other than the applied one;
- ``build-failed`` / ``fetch-failed``: an artifact could not be built / fetched;
- ``driver-quarantined``: the load test kept a driver out of the store (failed, or
  untested where tests are required); it is in the quarantine folder with its VM log;
- ``rollback``: a new Falco did not stay up and the previous container was put back;
- ``pass-failed``: a pass failed (or could not run) with none of the above to say why;
- ``kernel-without-driver``: an installed, not running kernel has no driver in the store.

A failure alerts when it was not there at the previous pass: once while it lasts, again
if it comes back after it cleared.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply import executor
from reconciler.daemon.passes import PassResult, Report
from reconciler.plan.diff import Op


class Kind(enum.StrEnum):
    PASS_FAILED = "pass-failed"  # noqa: S105 - an event name, not a password
    BUILD_FAILED = "build-failed"
    FETCH_FAILED = "fetch-failed"
    ROLLBACK = "rollback"
    REVISION_APPLIED = "revision-applied"
    KERNEL_WITHOUT_DRIVER = "kernel-without-driver"
    DRIVER_QUARANTINED = "driver-quarantined"

# How a build that the load test refused says so (``builder.runner``'s failure message).
_LOAD_TEST_REFUSAL = "failed at step load-test:"


@dataclass(frozen=True)
class Event:
    kind: Kind
    message: str  # one readable line
    time: str  # ISO 8601, UTC
    revision: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """What earlier passes already alerted: the failures of the last pass, and the
    kernels without a driver at ``revision``."""

    failures: frozenset[tuple[str, ...]] = frozenset()
    revision: str | None = None
    kernels: frozenset[str] = frozenset()


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _short(revision: str | None) -> str:
    return revision[:12] if revision else "none"


def _failures(report: Report, at: str) -> list[tuple[tuple[str, ...], Event]]:
    """Each failure of the pass, with the key that tells it from another."""
    revision = report.planned or report.head
    found: list[tuple[tuple[str, ...], Event]] = []
    for outcome in report.outcomes:
        if outcome.result is not executor.OutcomeResult.FAILED:
            continue
        change, said = outcome.change, _first_line(outcome.message)
        details = {"name": change.name, "op": change.op.value, "transient": outcome.transient,
                   "error": outcome.message}
        if change.op in (Op.BUILD, Op.FETCH) and _LOAD_TEST_REFUSAL in said:
            found.append(((Kind.DRIVER_QUARANTINED.value, change.name), Event(
                Kind.DRIVER_QUARANTINED, f"{change.name} held back by its load test: "
                f"{said.split(_LOAD_TEST_REFUSAL, 1)[1].strip()}", at, revision, details)))
        elif change.op in (Op.BUILD, Op.FETCH):
            kind = Kind.BUILD_FAILED if change.op is Op.BUILD else Kind.FETCH_FAILED
            verb = "build" if change.op is Op.BUILD else "fetch"
            found.append(((kind.value, change.name), Event(
                kind, f"{verb} of {change.name} failed: {said}", at, revision, details)))
        elif outcome.rolled_back:
            found.append(((Kind.ROLLBACK.value, change.name), Event(
                Kind.ROLLBACK, f"Falco {change.name} at revision {_short(revision)} did not "
                f"start; the previous container runs again: {said}", at, revision, details)))
    if report.result in (PassResult.FAILED, PassResult.ERROR) and not found:
        found.append(((Kind.PASS_FAILED.value, report.result.value,
                       _first_line(report.message)), Event(
            Kind.PASS_FAILED, f"pass {report.result.value} at revision "
            f"{_short(report.head)}: {_first_line(report.message)}", at, report.head,
            {"result": report.result.value, "transient": report.transient,
             "error": report.message})))
    return found


def detect(report: Report, seen: Seen, *, applied: str | None,
           at: str) -> tuple[list[Event], Seen]:
    """The events to send for ``report`` (``applied``: the revision applied before it),
    and what is seen once they are."""
    events: list[Event] = []
    if report.result is PassResult.OK and report.head and report.head != applied:
        events.append(Event(
            Kind.REVISION_APPLIED, f"revision {_short(report.head)} applied "
            f"(was {_short(applied)}): {report.message}", at, report.head,
            {"previous": applied, "changes": len(report.outcomes)}))
    failures = _failures(report, at)
    events += [event for key, event in failures if key not in seen.failures]
    revision = report.planned or report.head
    kernels = seen.kernels if revision == seen.revision else frozenset()
    for missing in report.kernels or ():
        if missing.running or missing.ready or missing.artifact in kernels:
            continue
        events.append(Event(
            Kind.KERNEL_WITHOUT_DRIVER, f"installed kernel {missing.release} has no driver "
            f"yet ({missing.artifact}): Falco would start without it after a reboot", at,
            revision, {"kernel": missing.release, "artifact": missing.artifact}))
        kernels |= {missing.artifact}
    return events, Seen(frozenset(key for key, _ in failures), revision, kernels)
