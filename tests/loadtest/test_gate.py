"""The build's load-test gate on the session's real module and probe: the kernel image
package comes from the builder's real apt sources, the VM is real; what it publishes or
quarantines follows the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.builder import steps
from reconciler.edges.docker.client import Docker
from reconciler.errors import StepFailed
from reconciler.loadtest import quarantine
from reconciler.loadtest.gate import Gate
from reconciler.loadtest.policy import Policy
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from tests.support.loadtest import DRIVER_VERSION, Built

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def key(release: str, kind: DriverKind, target: str = "debian") -> ArtifactKey:
    return ArtifactKey.for_kernel(KernelId(target, release, "1", "x86_64"), DRIVER_VERSION,
                                  kind)


def staged(built: Built, artifact: Path, tmp_path: Path) -> Path:
    """A copy of the artifact where a build leaves it before publish."""
    path = tmp_path / "out" / artifact.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(artifact.read_bytes())
    return path


def run_gate(gate: Gate, built: Built, kind: DriverKind, path: Path, tmp_path: Path,
             target: str = "debian") -> None:
    gate(key(built.own_kernel.release, kind, target), path, release=built.own_kernel.release,
         module_name="falco", device_name="falco",
         build_log=steps.BuildLog(tmp_path / "build.log"))


def test_required_a_passing_module_is_let_through_with_its_result_beside_it(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """The image package of the module's kernel is fetched through apt (Debian's mirror),
    the module passes, and its result waits beside it for the publish step."""
    module = staged(built, built.module, tmp_path)
    run_gate(Gate(engine, Policy.REQUIRED, built.setup), built, DriverKind.KMOD, module,
             tmp_path)
    result = json.loads(module.with_name(module.name + ".loadtest.json").read_text())
    assert result["result"] == "passed" and result["markersFound"] == 5
    packages = built.setup.state_dir / "cache" / "kernel-packages" / built.own_kernel.release
    assert [p.name.split("_")[0] for p in packages.glob("*.deb")] == [
        f"linux-image-{built.own_kernel.release}"]


def test_a_failing_probe_is_quarantined_with_its_vm_log_and_the_build_says_why(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """Even best-effort never publishes a failed driver: the step fails with the reason,
    and the probe, its result and its VM log go to <state>/quarantine/."""
    probe = staged(built, built.probe, tmp_path)
    with pytest.raises(StepFailed, match="the load test failed: the probe passed the "
                       "verifier, but scap-open could not start a capture") as failed:
        run_gate(Gate(engine, Policy.BEST_EFFORT, built.setup), built, DriverKind.EBPF,
                 probe, tmp_path)
    where = built.setup.state_dir / "quarantine" / key(
        built.own_kernel.release, DriverKind.EBPF).relpath
    assert str(where) in failed.value.reason
    assert where.read_bytes() == built.probe.read_bytes()
    assert "unable to mmap the perf-buffer" in where.with_name(
        where.name + ".vm.log").read_text(errors="replace")
    assert json.loads(where.with_name(where.name + ".loadtest.json").read_text())["loaded"]
    assert not probe.with_name(probe.name + ".loadtest.json").exists()
    (held,) = [h for h in quarantine.listed(built.setup.state_dir)
               if h["path"] == key(built.own_kernel.release, DriverKind.EBPF).relpath]
    assert held["result"] == "failed" and Path(str(held["vmLog"])).is_file()


def test_an_untestable_target_is_published_untested_unless_tests_are_required(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """No kernel image package is known for CentOS here: best-effort marks it untested,
    required refuses it. No VM is booted."""
    module = staged(built, built.module, tmp_path)
    run_gate(Gate(engine, Policy.BEST_EFFORT, built.setup), built, DriverKind.KMOD, module,
             tmp_path, target="centos")
    result = json.loads(module.with_name(module.name + ".loadtest.json").read_text())
    assert result["result"] == "untested"
    assert result["reasons"] == ["no kernel image package is known for target centos"]
    with pytest.raises(StepFailed, match="load_test is required and it could not run"):
        run_gate(Gate(engine, Policy.REQUIRED, built.setup), built, DriverKind.KMOD, module,
                 tmp_path, target="centos")
