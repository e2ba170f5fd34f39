"""Which alert events a pass report means (pure): each kind, a lasting failure alerting
once, an installed kernel without its driver once per revision."""

from __future__ import annotations

from reconciler.apply import executor
from reconciler.builder import steps
from reconciler.daemon import events
from reconciler.daemon.events import Kind, Seen
from reconciler.daemon.passes import PassResult, Report
from reconciler.daemon.state import KernelDriver
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.plan.diff import Change, ChangeKind, Op, Reason

AT = "2026-01-02T03:04:05.000Z"
RUNNING = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.0-1-amd64", "1", DriverKind.KMOD)
NEXT = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.0-2-amd64", "1", DriverKind.KMOD)
OTHER = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.0-3-amd64", "1", DriverKind.KMOD)


def build(key: ArtifactKey, result: executor.OutcomeResult, message: str = "") -> (
        executor.Outcome):
    change = Change(ChangeKind.DRIVER, Op.BUILD, key.relpath, Reason.MISSING, artifact=key)
    return executor.Outcome(change, result, message)


def falco(message: str, *, rolled_back: bool) -> executor.Outcome:
    change = Change(ChangeKind.CONTAINER, Op.REPLACE, "falco", Reason.SPEC_CHANGED)
    return executor.Outcome(change, executor.OutcomeResult.FAILED, message,
                            rolled_back=rolled_back)


def kinds(found: list[events.Event]) -> list[str]:
    return [e.kind.value for e in found]


def test_a_new_revision_applied_alerts_once() -> None:
    report = Report(PassResult.OK, "r2" * 20, "r2" * 20, message="2 change(s) applied")
    found, seen = events.detect(report, Seen(), applied="r1" * 20, at=AT)
    assert [(e.kind, e.revision, e.details) for e in found] == [
        (Kind.REVISION_APPLIED, "r2" * 20, {"previous": "r1" * 20, "changes": 0})]
    assert found[0].message == "revision r2r2r2r2r2r2 applied (was r1r1r1r1r1r1): " \
        "2 change(s) applied"
    again, _ = events.detect(report, seen, applied="r2" * 20, at=AT)
    assert again == []


def test_a_failed_build_alerts_as_such_not_also_as_a_failed_pass() -> None:
    report = Report(PassResult.FAILED, "r1", "r1", (
        build(NEXT, executor.OutcomeResult.FAILED, "no headers for 6.1.0-2\nmore"),
        build(OTHER, executor.OutcomeResult.OK)), message="1 of 2 change(s) failed")
    found, _ = events.detect(report, Seen(), applied="r1", at=AT)
    assert kinds(found) == ["build-failed"]
    assert found[0].message == f"build of {NEXT.relpath} failed: no headers for 6.1.0-2"
    assert found[0].details["transient"] is False


def test_a_rollback_is_told_from_a_plain_deploy_failure() -> None:
    put_back = Report(PassResult.FAILED, "r1", "r1", (
        falco("new Falco exited; the previous container was put back", rolled_back=True),))
    failed = Report(PassResult.FAILED, "r1", "r1", (
        falco("cannot create container", rolled_back=False),), message="1 of 1 failed")
    assert kinds(events.detect(put_back, Seen(), applied="r1", at=AT)[0]) == ["rollback"]
    assert kinds(events.detect(failed, Seen(), applied="r1", at=AT)[0]) == ["pass-failed"]


def test_a_failure_that_lasts_alerts_once_and_again_after_it_cleared() -> None:
    down = Report(PassResult.ERROR, "r1", message="engine away", transient=True)
    ok = Report(PassResult.OK, "r1", "r1")
    seen, sent = Seen(), []
    for report in (down, down, down, ok, down):
        found, seen = events.detect(report, seen, applied="r1", at=AT)
        sent += kinds(found)
    assert sent == ["pass-failed", "pass-failed"]


def test_an_installed_kernel_without_its_driver_alerts_once_per_revision() -> None:
    kernels = (KernelDriver("6.1.0-1-amd64", True, RUNNING.relpath, False),  # a build failed
               KernelDriver("6.1.0-2-amd64", False, NEXT.relpath, False),
               KernelDriver("6.1.0-3-amd64", False, OTHER.relpath, True))
    seen, sent = Seen(), []
    for revision in ("r1", "r1", "r1", "r2", "r2"):
        report = Report(PassResult.OK, revision, revision, kernels=kernels)
        found, seen = events.detect(report, seen, applied=revision, at=AT)
        sent += [(e.revision, e.details["kernel"]) for e in found]
    assert sent == [("r1", "6.1.0-2-amd64"), ("r2", "6.1.0-2-amd64")]


def test_a_fetch_that_fails_is_its_own_kind() -> None:
    change = Change(ChangeKind.DRIVER, Op.FETCH, NEXT.relpath, Reason.MISSING, artifact=NEXT)
    report = Report(PassResult.FAILED, "r1", "r1", (
        executor.Outcome(change, executor.OutcomeResult.FAILED, "404 from mirror"),))
    found, _ = events.detect(report, Seen(), applied="r1", at=AT)
    assert [(e.kind, e.message) for e in found] == [
        (Kind.FETCH_FAILED, f"fetch of {NEXT.relpath} failed: 404 from mirror")]



def test_a_driver_the_load_test_refused_alerts_as_quarantined_not_as_a_failed_build() -> None:
    """The runner's failure message for a refused driver (step load-test) is its own alert,
    with the kernel's reason; it lasts like any failure and alerts once."""
    said = (f"building {NEXT.relpath} failed at step {steps.Step.LOAD_TEST}: load test "
            "failed: insmod: disagrees about version of symbol module_layout; quarantined "
            "in /var/lib/x/quarantine/a.ko\n  full log: /var/lib/x/logs/a.log")
    report = Report(PassResult.FAILED, "r1", "r1", (
        build(NEXT, executor.OutcomeResult.FAILED, said),), message="1 change(s) failed")
    found, seen = events.detect(report, Seen(), applied="r1", at=AT)
    assert kinds(found) == ["driver-quarantined"]
    assert found[0].message.startswith(f"{NEXT.relpath} held back by its load test: load "
                                       "test failed: insmod: disagrees")
    assert events.detect(report, seen, applied="r1", at=AT)[0] == []
