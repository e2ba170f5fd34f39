"""An older Falco's userspace, tested in the VM as well: the driver loads, but can that
Falco read it on this kernel?

A real 10.2.0+driver module (API 10.1.0) is built for the newest cached Debian kernel from
the libs release tree and passes its own test (scap-open of its own libs, 0.25.1). The
repository also declares it for Falco 0.40.0, whose libs are 0.20.0: the gate builds
scap-open from the real libs 0.20.0 tree, reached through the same source template as the
driver, and boots the module again with it. That real libscap refuses the module's API
version, in the VM; the module is still published (it is fine), and what Falco 0.40.0's
userspace said is in its stored result, in ``validate`` (at the Host's line) and in the
plan's notes. Falco 0.44.0 (libs 0.25.2, newer) adds no run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli, plan
from reconciler.builder import runner
from reconciler.desired.state import (
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    container_spec,
)
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import LOAD_TEST_SUFFIX, Store
from reconciler.loadtest import quarantine, tester
from reconciler.loadtest.gate import Gate
from reconciler.loadtest.policy import Policy
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.manifests.models import FalcoSpec
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.modes import DriverMode
from reconciler.observe.state import ObservedState
from tests.builder.helpers import CACHE_ROOT, request
from tests.conftest import GitRepo
from tests.support import kernelpkg
from tests.support.loadtest import libs_template, require_vm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DRIVER = "10.2.0+driver"
HOST = """\
apiVersion: falco-reconciler/v1
kind: Host
metadata:
  name: {name}
spec:
  match: {{hostnames: ["{name}-*"]}}
  falco:
    version: {falco}
    driverVersion: 10.2.0+driver
"""


def test_an_older_falcos_userspace_is_tested_and_its_refusal_reported(
    engine: Docker, docker_client: Any, base_image: str, tmp_path: Path,
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    require_vm()
    (own, _other) = kernelpkg.require(2)
    state = tmp_path / "state"
    state.mkdir()
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (state / "cache").symlink_to(CACHE_ROOT / "cache")
    source = libs_template(tmp_path / "libs")
    gate = Gate(engine, Policy.REQUIRED, tester.Setup(state, source, base_image))
    config = runner.BuildConfig(state_dir=state, store=state / "store", source=source,
                                base_image=base_image, jobs=2, timeout=1800.0, load_test=gate)
    store = Store(config.store)
    asked = dataclasses.replace(request(own.release, DRIVER, DriverKind.KMOD),
                                falcos=("0.40.0", "0.44.0"))
    (outcome,) = runner.build_all([asked], config, Docker(docker_client), store)
    assert outcome.error is None, str(outcome.error)  # published: the driver is fine
    (artifact,) = outcome.artifacts
    result = LoadTestResult.from_json(json.loads(
        artifact.path.with_name(artifact.path.name + LOAD_TEST_SUFFIX).read_text()))
    assert (result.outcome, result.libs_version) == (Outcome.PASSED, "0.25.1"), result.summary()
    (check,) = result.userspaces  # 0.44.0's libs are newer than the tested 0.25.1
    assert (check.libs_version, check.falcos, check.outcome) == (
        "0.20.0", ("0.40.0",), Outcome.LOADED), check.line()
    # libscap 0.20.0's own words, from the VM (its API check of the running driver)
    assert "scap-open could not start a capture" in check.reasons[0]
    assert "API version supported by scap" in check.reasons[0], check.reasons
    assert Path(check.vm_log).is_file() and check.vm_log != result.vm_log

    # validate: a warning at the Host's line, with the test's reason; none for 0.44.0
    git_repo.commit({"hosts/old.yaml": HOST.format(name="old", falco="0.40.0"),
                     "hosts/new.yaml": HOST.format(name="new", falco="0.44.0")})
    capsys.readouterr()  # the build's own log lines
    assert cli.main(["validate", "--repo", str(git_repo.path), "--state-dir", str(state),
                     "--store", str(config.store)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"hosts/old.yaml:1: warning: the driver loads; Falco 0.40.0's userspace cannot read "
        f"it on {own.release}: {check.reasons[0]} (load test of {artifact.key.relpath} "
        "with libs 0.20.0)"]

    # plan: the same as its own note, for a Host on Falco 0.40.0 only
    assert note(artifact.key, "0.40.0", quarantine.LoadTestFiles(state, store)) == [
        f"warning: {artifact.key.relpath}: the driver loads; Falco 0.40.0's userspace cannot "
        f"read it on this kernel: {check.reasons[0]} (tested with libs 0.20.0)"]
    assert note(artifact.key, "0.44.0", quarantine.LoadTestFiles(state, store)) == []


def note(key: ArtifactKey, falco: str, tests: quarantine.LoadTestFiles) -> list[str]:
    spec = container_spec(FalcoSpec(version=falco, driverVersion=DRIVER),
                               drivers_url="http://127.0.0.1:8000", driver_relpath=key.relpath)
    want = DesiredState(
        revision="a" * 40, hostname="old-1", host="old",
        artifacts=(DesiredArtifact(key, ("Host/old (running kernel)",)),),
        container=DesiredContainer(spec, "old", falco, DriverMode.KMOD, key,
                                   "http://127.0.0.1:8000"))
    seen = ObservedState(present=frozenset({key}), unreadable=tuple(tests.unreadable(key)))
    return [n for n in plan.diff(want, seen).notes if "userspace" in n]
