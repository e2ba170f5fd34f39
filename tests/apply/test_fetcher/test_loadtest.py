"""Fetched drivers and the load test, end to end over real HTTP (our own driver server over
a second store stands in for a build host, its index carrying each driver's ``loadTest``):
a fetched driver keeps the result of the host that ran its test; an upstream set to
``require_tested`` gives only what its index says passed; this host's own test (when it
can run one) decides as it does for a build. The VM test of a fetched driver on a real
kernel is in tests/loadtest/test_gate.py; here this host's test is a recorder that writes
or refuses as the gate does (result beside the file, ``StepFailed`` to keep it out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import executor, fetcher
from reconciler.errors import StepFailed
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.upstreams import UpstreamKind
from reconciler.plan.diff import Op
from tests.apply.test_fetcher.test_upstreams import (
    EBPF,
    GOOD,
    KMOD,
    PROBE_BUILD,
    RELEASE,
    Host,
    Upstream,
    drivers,
    reconciler_upstream,
)
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml

PASSED = LoadTestResult(Outcome.PASSED, "kmod", (), True, 1709, 0, 5, 5, 7.3, RELEASE,
                        "ab" * 32, "0.20.0")


@pytest.fixture
def web(git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> Host:
    """web-1 as test_fetcher has it: Falco 0.32.2 kmod, plus a probe build."""
    git_repo.commit({"web.yaml": host_yaml(image="docker.io/falcosecurity/falco"),
                     "probe.yaml": PROBE_BUILD})
    return Host(git_repo, make_host_root(), tmp_path)


def with_results(root: Path, results: dict[ArtifactKey, LoadTestResult]) -> None:
    """What a build host's gate leaves beside each published driver."""
    for key, result in results.items():
        path = root / key.relpath
        path.with_name(path.name + ".loadtest.json").write_text(json.dumps(result.to_json()))


def stored_result(web: Host, key: ArtifactKey) -> dict[str, object] | None:
    path = web.store.path_of(key)
    sidecar = path.with_name(path.name + ".loadtest.json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def apply(web: Host, upstreams: list[Upstream], load_test: object = None
          ) -> list[executor.Outcome]:
    rt = web.make(upstreams)
    planned = rt.planner().plan()
    run = executor.Executor(
        rt.store, web.builds, web.start, lambda _c, _d: "loaded",
        fetch=fetcher.Fetcher(rt.store, rt.settings.upstreams,
                              load_test=load_test).fetch)  # type: ignore[arg-type]
    return run.run(planned.plan, planned.desired)


def test_a_fetched_driver_carries_the_result_of_the_host_that_tested_it(
        web: Host, tmp_path: Path) -> None:
    """The build host's result travels in its index.json and lands beside the fetched
    file, marked with who tested it; an untested one carries nothing."""
    with reconciler_upstream(tmp_path / "b", GOOD) as url:
        with_results(tmp_path / "b", {KMOD: PASSED})
        outcomes = apply(web, [Upstream(url, UpstreamKind.RECONCILER)])
    assert all(o.result.value == "ok" for o in outcomes), outcomes
    carried = stored_result(web, KMOD)
    assert carried is not None
    assert (carried["result"], carried["events"], carried["testedBy"]) == (
        "passed", 1709, Upstream(url).name)
    assert stored_result(web, EBPF) is None


def test_require_tested_takes_only_what_passed_and_builds_the_rest(
        web: Host, tmp_path: Path) -> None:
    """The probe's index entry says untested: with require_tested it is not offered (the
    plan says why) and is built here; the tested module is fetched."""
    untested = LoadTestResult.untested("ebpf", "no QEMU on the build host")
    with reconciler_upstream(tmp_path / "b", GOOD) as url:
        with_results(tmp_path / "b", {KMOD: PASSED, EBPF: untested})
        source = Upstream(url, UpstreamKind.RECONCILER, require_tested=True)
        planned = web.make([source]).planner().plan()
        assert drivers(planned)[KMOD.relpath][0] is Op.FETCH
        assert drivers(planned)[EBPF.relpath][0] is Op.BUILD
        assert any(f"{EBPF.relpath}: {source.name} has it, but its index says no passed load "
                   "test (untested) and require_tested is set" in n for n in planned.plan.notes)
        apply(web, [source])
    assert [r.kernel.kernel_release for r in web.builds.requests] == [RELEASE]
    assert web.builds.requests[0].kinds == (EBPF.kind,)
    assert web.store.lookup(KMOD) is not None


def test_this_hosts_own_test_decides_and_its_result_wins(web: Host, tmp_path: Path) -> None:
    """Where this host can test, it does, before publishing: a refusal keeps the file out
    (the fetch fails and the driver is built instead), a result of its own replaces the
    upstream's. The test is given the Falcos that load the driver (their userspaces are
    tried too): web-1's own Falco for its module; none declare the probe's build."""
    tested: list[str] = []
    falcos_of: dict[str, tuple[str, ...]] = {}

    def own_test(key: ArtifactKey, path: Path, release: str, falcos: tuple[str, ...]) -> None:
        tested.append(key.relpath)
        falcos_of[key.relpath] = falcos
        assert path.read_bytes() == GOOD[key] and release == RELEASE  # the downloaded bytes
        if key == EBPF:
            raise StepFailed("the load test failed: the probe did not load through the "
                             "verifier; quarantined in /q")
        mine = LoadTestResult(Outcome.PASSED, "kmod", events=42, libs_version="0.20.0")
        path.with_name(path.name + ".loadtest.json").write_text(json.dumps(mine.to_json()))

    with reconciler_upstream(tmp_path / "b", GOOD) as url:
        with_results(tmp_path / "b", {KMOD: PASSED, EBPF: PASSED})
        outcomes = apply(web, [Upstream(url, UpstreamKind.RECONCILER)], own_test)
    assert sorted(tested) == sorted([KMOD.relpath, EBPF.relpath])
    assert falcos_of == {KMOD.relpath: ("0.32.2",), EBPF.relpath: ()}
    own = stored_result(web, KMOD)
    assert own is not None and own["events"] == 42 and "testedBy" not in own
    probe = next(o for o in outcomes if o.change.name == EBPF.relpath)
    assert "its load test here refused it: the load test failed" in probe.message
    assert web.builds.requests[0].kinds == (EBPF.kind,)  # built instead of the refused copy
