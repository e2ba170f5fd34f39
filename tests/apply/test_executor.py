"""The executor with fakes of our own adapters: one outcome per change, and order/safety."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler import logs, plan
from reconciler.apply import executor
from reconciler.builder import BuildOutcome, BuildRequest, steps
from reconciler.desired.state import (
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    container_spec,
)
from reconciler.edges.store.local import Store
from reconciler.errors import (
    BuildError,
    ConfigError,
    DeployError,
    DockerError,
    FalcoStartError,
)
from reconciler.manifests.models import DriverMode, FalcoSpec
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.asking import RequestOutcome
from reconciler.model.buildrequests import Requested
from reconciler.model.observations import ObservedContainer
from reconciler.observe.state import ObservedState

GOOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                   DriverKind.KMOD)
BAD = ArtifactKey("2.0.0+driver", "x86_64", "debian", "9.9.9-nope", "1", DriverKind.KMOD)


def state(falco_needs: ArtifactKey) -> DesiredState:
    spec = container_spec(FalcoSpec(version="0.32.2"), drivers_url="http://x",
                              driver_relpath=falco_needs.relpath)
    return DesiredState(
        revision="r" * 40, hostname="web-1", host="web",
        artifacts=(DesiredArtifact(GOOD, ("a",)), DesiredArtifact(BAD, ("b",), ("http://h",))),
        container=DesiredContainer(spec, "web", "0.32.2", DriverMode.KMOD, falco_needs,
                                   "http://x"),
    )


def no_module(change: plan.Change, _desired: DesiredState) -> str:
    raise AssertionError(f"no kernel module change was planned, got {change}")


class FakeBuilder:
    def __init__(self) -> None:
        self.requests: list[BuildRequest] = []

    def __call__(self, requests: Sequence[BuildRequest]) -> Sequence[BuildOutcome]:
        self.requests += requests
        return tuple(
            BuildOutcome(r, error=BuildError("no headers", step="kernel-headers"))
            if r.kernel.kernel_release == BAD.kernel_release else BuildOutcome(r)
            for r in requests
        )


def test_failed_build_skips_the_falco_that_needs_it_but_not_the_rest(tmp_path: Path) -> None:
    desired = state(BAD)
    started: list[str] = []
    run = executor.Executor(Store(tmp_path), FakeBuilder(),
                            lambda change, _d: started.append(change.name) or "started",
                            no_module)
    outcomes = run.run(plan.diff(desired, ObservedState()), desired)
    results = {(o.change.op.value, o.change.name): o.result.value for o in outcomes}
    assert results == {("build", GOOD.relpath): "ok", ("build", BAD.relpath): "failed",
                       ("create", "falco"): "skipped"}
    assert started == []


def test_falco_starts_after_its_driver_built(tmp_path: Path) -> None:
    desired = state(GOOD)
    builder = FakeBuilder()
    run = executor.Executor(Store(tmp_path), builder, lambda _c, _d: "started", no_module)
    outcomes = run.run(plan.diff(desired, ObservedState()), desired)
    assert [o.result.value for o in outcomes] == ["ok", "failed", "ok"]
    assert outcomes[-1].change.op is plan.Op.CREATE
    # One request per kernel and driver version, carrying the manifest's header URLs.
    assert sorted(r.kernel_urls for r in builder.requests) == [(), ("http://h",)]


def test_container_failure_is_recorded_with_its_transience(tmp_path: Path) -> None:
    desired = state(GOOD)

    def boom(_c: plan.Change, _d: DesiredState) -> str:
        raise DockerError("engine went away")

    outcomes = executor.Executor(Store(tmp_path), FakeBuilder(), boom, no_module).run(
        plan.diff(desired, ObservedState(present=frozenset({GOOD, BAD}))), desired)
    assert [(o.result.value, o.message, o.transient) for o in outcomes] == [
        ("failed", "engine went away", True)]


def test_a_falco_rolled_back_is_an_outcome_that_says_so(tmp_path: Path) -> None:
    desired = state(GOOD)

    def rolled(_c: plan.Change, _d: DesiredState) -> str:
        raise FalcoStartError("new Falco exited; the previous container was put back",
                              restored=True)

    def lost(_c: plan.Change, _d: DesiredState) -> str:
        raise FalcoStartError("new Falco exited; the previous container could not be put back")

    seen = ObservedState(present=frozenset({GOOD, BAD}))
    for applier, back in ((rolled, True), (lost, False)):
        outcomes = executor.Executor(Store(tmp_path), FakeBuilder(), applier, no_module).run(
            plan.diff(desired, seen), desired)
        assert [(o.result.value, o.rolled_back) for o in outcomes] == [("failed", back)]


class CountingArtifacts(tuple[DesiredArtifact, ...]):
    """The desired artifacts, counting how often anyone walks through them."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]  # tuple's own signature
        CountingArtifacts.walks += 1
        return super().__iter__()


def test_apply_looks_up_each_change_in_an_index_not_by_walking_every_artifact(
    tmp_path: Path,
) -> None:
    """Applying N builds walks the desired artifacts a constant number of times (the
    index is made once), not once per change: linear in the number of changes."""
    keys = [ArtifactKey("2.0.0+driver", "x86_64", "debian", f"6.1.0-{n}-cloud-amd64", "1",
                        DriverKind.KMOD) for n in range(500)]
    artifacts = CountingArtifacts(DesiredArtifact(k, ("b",)) for k in keys)
    desired = DesiredState("r" * 40, "build-1", None, artifacts, None)
    CountingArtifacts.walks = 0
    outcomes = executor.Executor(Store(tmp_path), FakeBuilder(), lambda _c, _d: "",
                                 no_module).run(plan.diff(desired, ObservedState()), desired)
    assert len(outcomes) == len(keys)
    assert CountingArtifacts.walks <= 2  # the diff's walks; none per change


def test_each_run_reports_only_its_own_outcomes(tmp_path: Path) -> None:
    desired = state(GOOD)
    run = executor.Executor(Store(tmp_path), FakeBuilder(), lambda _c, _d: "started",
                            no_module)
    first = run.run(plan.diff(desired, ObservedState()), desired)
    second = run.run(plan.diff(desired, ObservedState()), desired)
    assert len(first) == len(second) == 3
    assert [o.change for o in first] == [o.change for o in second]


def test_a_failed_loader_run_leaves_the_running_falco_as_it_is(tmp_path: Path) -> None:
    spec = container_spec(FalcoSpec(version="0.40.0"), drivers_url="http://x",
                          driver_relpath=GOOD.relpath)
    desired = DesiredState("r" * 40, "web-1", "web", (DesiredArtifact(GOOD, ("a",)),),
                           DesiredContainer(spec, "web", "0.40.0", DriverMode.KMOD, GOOD,
                                            "http://x"))
    applied: list[str] = []

    def apply(change: plan.Change, _d: DesiredState) -> str:
        applied.append(change.name)
        if change.reason is plan.Reason.LOADER_RUN:
            raise DeployError("driver loader exited with code 1; Falco left as is.")
        return "started"

    outcomes = executor.Executor(Store(tmp_path), FakeBuilder(), apply, no_module).run(
        plan.diff(desired, ObservedState(present=frozenset({GOOD}))), desired)
    assert [(o.change.name, o.result.value) for o in outcomes] == [
        ("falco-driver-loader", "failed"), ("falco", "skipped")]
    assert applied == ["falco-driver-loader"]


def test_a_kernel_named_otherwise_than_uname_r_is_built_for_its_real_release(
    tmp_path: Path,
) -> None:
    """Falco 0.40 on Debian asks for ``6.1.192-3-cloud-amd64``; the kernel is
    ``6.1.0-57-cloud-amd64``: the request carries both, once per kernel."""
    named = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.192-3-cloud-amd64", "1",
                        DriverKind.KMOD)
    probe = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.192-3-cloud-amd64", "1",
                        DriverKind.EBPF)
    desired = DesiredState(
        revision="r" * 40, hostname="web-1", host="web", container=None,
        artifacts=(DesiredArtifact(named, ("a",), (), "6.1.0-57-cloud-amd64"),
                   DesiredArtifact(probe, ("b",), (), "6.1.0-57-cloud-amd64"),
                   DesiredArtifact(GOOD, ("c",))),
    )
    builder = FakeBuilder()
    executor.Executor(Store(tmp_path), builder, no_module, no_module).run(
        plan.diff(desired, ObservedState()), desired)
    by_name = {r.kernel.kernel_release: r for r in builder.requests}
    assert by_name["6.1.192-3-cloud-amd64"].uname_release == "6.1.0-57-cloud-amd64"
    assert by_name["6.1.192-3-cloud-amd64"].kinds == (DriverKind.KMOD, DriverKind.EBPF)
    assert by_name["6.1.192-3-cloud-amd64"].built_kernel.kernel_release == "6.1.0-57-cloud-amd64"
    assert by_name[GOOD.kernel_release].uname_release == ""


def test_a_driver_the_load_test_refused_leaves_the_running_falco_on_its_driver(
    tmp_path: Path,
) -> None:
    """Falco runs on GOOD; the revision moves it to BAD, whose build the load test refuses
    (a build failure at step load-test, as the runner reports it): the replace is skipped,
    so the running container (and the driver it loaded) is not touched."""
    running = state(GOOD).container
    assert running is not None
    observed = ObservedState(present=frozenset({GOOD}), containers=(ObservedContainer(
        id="c" * 64, name=running.spec.name, image=running.spec.image, status="running",
        labels=tuple(running.spec.labels(revision="a" * 40, host="web").items()),
        env=(*running.spec.env, ("PATH", "/usr/bin")), exit_code=0),))

    def refused(requests: Sequence[BuildRequest]) -> Sequence[BuildOutcome]:
        return tuple(BuildOutcome(r, error=BuildError(
            f"building {BAD.relpath} failed at step {steps.Step.LOAD_TEST}: load test "
            "failed: insmod: can't insert; quarantined in /q", step=steps.Step.LOAD_TEST))
            for r in requests)

    touched: list[str] = []
    desired = state(BAD)
    outcomes = executor.Executor(
        Store(tmp_path), refused, lambda change, _d: touched.append(change.name) or "x",
        no_module).run(plan.diff(desired, observed), desired)
    results = [(o.change.op.value, o.result.value) for o in outcomes]
    assert ("build", "failed") in results and ("replace", "skipped") in results
    assert touched == []


def test_a_failure_is_logged_once_at_error_level_with_its_whole_cause(tmp_path: Path) -> None:
    desired = state(BAD)
    run = executor.Executor(Store(tmp_path), FakeBuilder(), lambda _c, _d: "started",
                            no_module)
    with logs.captured() as events:
        run.run(plan.diff(desired, ObservedState()), desired)
    failed = [e for e in events if e["log_level"] == "error"]
    assert [e["event"] for e in failed] == ["change.failed"]
    assert failed[0]["name"] == BAD.relpath and "no headers" in failed[0]["message"]
    said = [e for e in events if "no headers" in str(e.get("message", ""))]
    assert len(said) == 1  # the skipped Falco names the driver, not the build's cause again


def test_on_a_terminal_a_multi_line_cause_reads_as_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", "console")
    try:
        logs.get("t").error("change.failed", name="a.ko",
                            message="build failed\nmain.c:12: error: x\nmake: *** Error 1")
    finally:
        logs.configure()
    err = capsys.readouterr().err
    assert "\\n" not in err
    assert "    message:\n      build failed\n      main.c:12: error: x\n" in err


def test_a_build_request_that_cannot_be_signed_fails_for_good_and_the_rest_goes_on(
        tmp_path: Path) -> None:
    """A missing build-request secret (the requester's ConfigError) is a permanent failure
    of each requested artifact, not an unreachable build host retried forever; changes
    that need no request are still applied."""
    desired = state(GOOD)

    def unsigned(_keys: Sequence[Requested], _hostname: str) -> RequestOutcome:
        raise ConfigError("the build request secret /etc/x is empty")

    started: list[str] = []
    planned = plan.requests_instead(plan.diff(desired, ObservedState(
        present=frozenset({GOOD}))))
    outcomes = executor.Executor(
        Store(tmp_path), FakeBuilder(), lambda c, _d: started.append(c.name) or "started",
        no_module, request=unsigned, build_fallback=False).run(planned, desired)
    requested = [o for o in outcomes if o.change.op is plan.Op.REQUEST]
    assert [(o.result.value, o.transient) for o in requested] == [("failed", False)]
    assert "secret /etc/x is empty" in requested[0].message
    assert started == ["falco"]
