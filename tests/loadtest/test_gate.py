"""The build's load-test gate on the session's real module and probe: the kernel image
package comes from the builder's real apt sources, the VM is real; what it publishes or
quarantines follows the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.apply.fetcher import Fetcher
from reconciler.builder import steps
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.errors import StepFailed
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.loadtest import quarantine
from reconciler.loadtest.gate import Gate
from reconciler.loadtest.policy import Policy
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.offers import Offer
from reconciler.model.upstreams import Trust, Upstream, UpstreamKind
from reconciler.plan.diff import Change, ChangeKind, Op, Reason
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


def test_required_a_fetched_module_is_tested_here_and_published_with_its_result(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """A host that can test fetches the real module from a real upstream (our driver server
    over loopback) and tests it before publishing, as it tests a build: the image package of
    its kernel comes through apt (Debian's mirror), the module passes in the VM, and its
    result lands beside it in the store, this host's own (no testedBy)."""
    artifact = key(built.own_kernel.release, DriverKind.KMOD)
    upstream_store = Store(tmp_path / "upstream")
    upstream_store.publish(artifact, built.module)
    store = Store(tmp_path / "store")
    gate = Gate(engine, Policy.REQUIRED, built.setup)
    with DriverServer(upstream_store, ("127.0.0.1", 0),
                      config=ServerConfig(workers=2, host_arch="x86_64")) as running:
        source = Upstream(running.url, UpstreamKind.RECONCILER, trust=Trust.CHECKSUM)
        offer = Offer(source.name, running.url + "/" + artifact.url_path().lstrip("/"),
                      trust=Trust.CHECKSUM)
        change = Change(ChangeKind.DRIVER, Op.FETCH, artifact.relpath, Reason.MISSING,
                        artifact=artifact, offers=(offer,))
        want = DesiredState(revision="r" * 40, hostname="edge-1", host=None, container=None,
                            artifacts=(DesiredArtifact(artifact, ("DriverBuild/x",)),))
        said = Fetcher(store, (source,), load_test=gate.fetched).fetch(change, want)
    assert said.startswith(f"fetched from {source.name}, verified")
    stored = store.lookup(artifact)
    assert stored is not None
    result = json.loads(stored.path.with_name(stored.path.name + ".loadtest.json").read_text())
    assert result["result"] == "passed" and result["markersFound"] == 5
    assert "testedBy" not in result
    packages = built.setup.state_dir / "cache" / "kernel-packages" / built.own_kernel.release
    assert [p.name.split("_")[0] for p in packages.glob("*.deb")] == [
        f"linux-image-{built.own_kernel.release}"]
    assert list((built.setup.state_dir / "logs").glob("fetch-*.log"))


def test_required_a_probe_its_libscap_cannot_read_is_quarantined_as_loaded_not_failed(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """The probe loads but libscap 0.20 cannot read it on this kernel (CVE-2025-38563's
    fix): with tests required the step fails with the reason, and the probe, its
    ``loaded`` result and its VM log go to <state>/quarantine/ (best-effort would publish
    it: test_policy)."""
    probe = staged(built, built.probe, tmp_path)
    with pytest.raises(StepFailed, match="load_test is required and the capture failed: "
                       "the probe passed the verifier, but scap-open could not start a "
                       "capture") as failed:
        run_gate(Gate(engine, Policy.REQUIRED, built.setup), built, DriverKind.EBPF,
                 probe, tmp_path)
    where = built.setup.state_dir / "quarantine" / key(
        built.own_kernel.release, DriverKind.EBPF).relpath
    assert str(where) in failed.value.reason
    assert where.read_bytes() == built.probe.read_bytes()
    assert "unable to mmap the perf-buffer" in where.with_name(
        where.name + ".vm.log").read_text(errors="replace")
    saved = json.loads(where.with_name(where.name + ".loadtest.json").read_text())
    assert saved["loaded"] and saved["result"] == "loaded"
    assert not probe.with_name(probe.name + ".loadtest.json").exists()
    (held,) = [h for h in quarantine.listed(built.setup.state_dir)
               if h["path"] == key(built.own_kernel.release, DriverKind.EBPF).relpath]
    assert held["result"] == "loaded" and Path(str(held["vmLog"])).is_file()


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
