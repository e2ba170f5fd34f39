"""The build's load-test gate on the session's real module and probe: the kernel image
package comes from the builder's real apt sources, the VM is real; what it publishes or
quarantines follows the policy."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from reconciler.apply.fetcher import Fetcher
from reconciler.builder import headers, images, runner, steps
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.errors import StepFailed
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.loadtest import quarantine, tester
from reconciler.loadtest.gate import Gate
from reconciler.loadtest.policy import Policy
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.netpolicy import UrlPolicy
from reconciler.model.offers import Offer
from reconciler.model.upstreams import Trust, Upstream, UpstreamKind
from reconciler.plan.diff import Change, ChangeKind, Op, Reason
from tests.builder.helpers import CACHE_ROOT, download_header_debs
from tests.support import kernelpkg
from tests.support.loadtest import DRIVER_VERSION, Built, libs_tarball, require_vm
from tests.support.upstreams import Behaviour, file_server

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# The host's kernel_url_allow opening loopback, where the test's package server is.
LOOPBACK = UrlPolicy((ipaddress.ip_network("127.0.0.0/8"),))


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
    """CentOS's image does not come through the builder's apt sources, and no kernelUrls
    package of this release held one (its headers cache has none): best-effort marks it
    untested, saying what would give it an image, required refuses it. No VM is booted."""
    module = staged(built, built.module, tmp_path)
    release = built.own_kernel.release
    run_gate(Gate(engine, Policy.BEST_EFFORT, built.setup), built, DriverKind.KMOD, module,
             tmp_path, target="centos")
    result = json.loads(module.with_name(module.name + ".loadtest.json").read_text())
    assert result["result"] == "untested"
    assert result["reasons"] == [
        f"no kernel image for centos {release}: list its image package (one holding "
        f"boot/vmlinuz-{release} or lib/modules/{release}/vmlinuz, such as linux-image-* "
        "or kernel-core) in the DriverBuild's kernelUrls"]
    with pytest.raises(StepFailed, match="load_test is required and it could not run"):
        run_gate(Gate(engine, Policy.REQUIRED, built.setup), built, DriverKind.KMOD, module,
                 tmp_path, target="centos")


def test_a_kernel_of_another_architecture_is_untested_not_booted(
    built: Built, engine: Docker, tmp_path: Path,
) -> None:
    """QEMU here boots x86_64 kernels: a Debian arm64 kernel's driver is untested with that
    reason, before any image package is fetched (none lands in the cache)."""
    module = staged(built, built.module, tmp_path)
    release = "6.1.0-57-arm64"
    arm = ArtifactKey.for_kernel(KernelId("debian", release, "1", "aarch64"),
                                 DRIVER_VERSION, DriverKind.KMOD)
    Gate(engine, Policy.BEST_EFFORT, built.setup)(
        arm, module, release=release, module_name="falco", device_name="falco",
        build_log=steps.BuildLog(tmp_path / "build.log"))
    result = json.loads(module.with_name(module.name + ".loadtest.json").read_text())
    assert result["result"] == "untested"
    assert result["reasons"] == [
        "the load test boots x86_64 kernels only (qemu-system-x86_64), not aarch64"]
    assert not (built.setup.state_dir / "cache" / "kernel-packages" / release).exists()


def own_state(tmp_path: Path) -> Path:
    """A state dir with a cold headers cache (so the kernelUrls are fetched and unpacked
    now) and no kernel images; the driver source and scap-open caches are the session's."""
    state = tmp_path / "state"
    (state / "cache").mkdir(parents=True)
    for shared in ("locks", "sources", "guest-userspace"):
        (CACHE_ROOT / "cache" / shared).mkdir(parents=True, exist_ok=True)
        (state / "cache" / shared).symlink_to(CACHE_ROOT / "cache" / shared)
    return state


def vmlinuz_sha256(deb: Path, release: str) -> str:
    """The sha256 of the package's boot/vmlinuz-<release>, read by dpkg-deb and tar."""
    done = subprocess.run(
        ["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./boot/vmlinuz-$2" '
         "| sha256sum", "sh", str(deb), release],
        check=True, capture_output=True, text=True)
    return done.stdout.split()[0]


def build_from_urls(engine: Docker, base_image: str, tmp_path: Path, target: str, *,
                    with_image: bool, state: Path | None = None
                    ) -> tuple[runner.BuildOutcome, Path, Behaviour]:
    """A real build of the module for the newest cached Debian kernel under ``target``,
    its headers (and, ``with_image``, its real linux-image .deb) named by kernelUrls and
    served over loopback HTTP, with the load test required (in ``state``, else a new
    state dir)."""
    require_vm()
    (own,) = kernelpkg.require(1)
    state = state or own_state(tmp_path)
    eng = jobs.Jobs(engine)
    builder = images.ensure(eng, base_image, state / "cache" / "locks",
                            steps.BuildLog(tmp_path / "image.log"), timeout=1800)
    debs = download_header_debs(eng, builder.reference, own.release, tmp_path / "debs")
    debs += [own.deb] if with_image else []
    source = str(libs_tarball(DRIVER_VERSION))
    gate = Gate(engine, Policy.REQUIRED, tester.Setup(state, source, base_image))
    with file_server(Behaviour(files={f"/{d.name}": d.read_bytes() for d in debs})) as (
            base, served):
        config = runner.BuildConfig(state_dir=state, store=state / "store", source=source,
                                    base_image=base_image, jobs=2, timeout=1800.0,
                                    url_policy=LOOPBACK, load_test=gate)
        request = runner.BuildRequest(KernelId(target, own.release, "1", "x86_64"),
                                      DRIVER_VERSION, (DriverKind.KMOD,),
                                      tuple(f"{base}/{d.name}" for d in debs))
        (outcome,) = runner.build_all([request], config, engine, Store(config.store))
    return outcome, state, served


@pytest.mark.parametrize("target", ["vanilla", "debian"])
def test_an_image_package_among_kernel_urls_is_the_kernel_booted(
    engine: Docker, base_image: str, tmp_path: Path, target: str,
) -> None:
    """A build whose kernelUrls carry Debian's real linux-image .deb beside its header
    packages (served over loopback HTTP) keeps that package's vmlinuz with the headers, and
    its load test boots exactly that image: for a target no apt source knows (vanilla),
    and for Debian too, in preference to the apt sources' package (none is fetched). The
    module passes in the VM, and its result names the sha256 of the vmlinuz in that .deb."""
    (own,) = kernelpkg.require(1)
    outcome, state, served = build_from_urls(engine, base_image, tmp_path, target,
                                             with_image=True)
    assert outcome.error is None, str(outcome.error)
    assert f"GET /{own.deb.name}" in [f"{method} {path}" for method, path, _ in served.requests]
    (stored,) = outcome.artifacts
    result = json.loads(stored.path.with_name(stored.path.name + ".loadtest.json").read_text())
    assert result["result"] == "passed", result
    assert result["markersFound"] == 5
    assert result["kernelRelease"] == own.release
    assert result["kernelImageSha256"] == vmlinuz_sha256(own.deb, own.release)
    kernel = KernelId(target, own.release, "1", "x86_64")
    kept = headers.image_path(state / "cache" / "headers", kernel)
    assert kept.is_file()  # kept with the headers, out of the tree the build mounts
    assert not (kept.parent / "root" / "boot" / f"vmlinuz-{own.release}").exists()
    assert not (state / "cache" / "kernel-packages").exists()
    assert outcome.log_path is not None
    assert f"kernel image {own.release}: from the build's kernelUrls" in (
        outcome.log_path.read_text())


def test_kernel_urls_without_the_image_package_leave_a_vanilla_kernel_untested(
    engine: Docker, base_image: str, tmp_path: Path,
) -> None:
    """The same build with only the header packages in kernelUrls: no image to boot, so
    with the test required the build fails at load-test, saying to list the image package
    in kernelUrls, and nothing is published. Once the image package is listed, the next
    build fetches the release's headers again, with it (the cached ones were fetched
    without it), and the module passes in the VM."""
    (own,) = kernelpkg.require(1)
    outcome, state, _ = build_from_urls(engine, base_image, tmp_path, "vanilla",
                                        with_image=False)
    assert outcome.error is not None
    said = str(outcome.error)
    assert "load_test is required and it could not run" in said, said
    assert (f"no kernel image for vanilla {own.release}: list its image package" in said
            and "in the DriverBuild's kernelUrls (the next build fetches its headers "
            "again, with it)" in said), said
    assert outcome.artifacts == ()
    assert not list((state / "store").rglob("*.ko"))

    again, _, served = build_from_urls(engine, base_image, tmp_path, "vanilla",
                                       with_image=True, state=state)
    assert again.error is None, str(again.error)
    assert f"GET /{own.deb.name}" in [f"{method} {path}" for method, path, _ in served.requests]
    (stored,) = again.artifacts
    result = json.loads(stored.path.with_name(stored.path.name + ".loadtest.json").read_text())
    assert result["result"] == "passed", result
    folder = headers.cache_dir(state / "cache" / "headers",
                               KernelId("vanilla", own.release, "1", "x86_64"))
    assert headers.image_path(state / "cache" / "headers",
                              KernelId("vanilla", own.release, "1", "x86_64")).is_file()
    assert len(list(folder.parent.glob(f".{folder.name}.retired-*"))) == 1  # kept aside
