"""Benchmark: a kernel upgrade with the daemon running, and the reboot into it. One run.

A host root (Debian 12) runs the real 6.1.0-50-cloud-amd64, Falco 0.40.0 kmod on the
stand-in images (tests/daemon/test_loop/test_kernel_upgrade.py says what stands in for what); the
driver source is trixie's falcosecurity-scap-dkms, and the header and source caches are
the build tests' (warm), so only the compile is left of a build.

(a) upgrade: from the 6.1.0-57-cloud-amd64 package unpacked into the host root (the
    clock starts before the unpacking) to the daemon's pass woken by it having found the
    new kernel's driver ready at its URL, the build excluded: the artifact was built once
    first, untimed, into the daemon's own store and state dir, so the builder finds it
    there and starts no container (bench/build_cache.py, step 3).
(b) reboot: from the daemon's start after the simulated reboot into 6.1.0-57 (daemon
    stopped, Falco stopped, proc/sys/kernel and the stand-in kernel switched) to Falco
    holding the module open, with the driver prebuilt, and again with it removed from the
    store first, so its build (warm caches: the compile alone) is on the boot path.

    python bench/kernel_upgrade.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _daemon import Site, standins

from reconciler import logs
from reconciler.builder import runner
from reconciler.edges.docker.client import Docker
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.http import client
from reconciler.edges.store.local import Store
from reconciler.model import kernelnames
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.versions import FalcoVersion, driver_version
from tests.builder.helpers import CACHE_ROOT
from tests.conftest import BASE_IMAGE
from tests.daemon.conftest import Daemon
from tests.support import falcohost, kernelpkg
from tests.support.standin_kernel import StandinKernel

FALCO = "0.40.0"
SOURCE = "deb:falcosecurity-scap-dkms/trixie"


def host_root(where: Path, running: kernelpkg.Unpacked) -> Path:
    root = where / "host"
    for folder in ("etc", "proc/sys/kernel"):
        (root / folder).mkdir(parents=True)
    (root / "etc/hostname").write_text("web-1\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "proc/sys/kernel/arch").write_text("x86_64\n")
    running.install(root)
    uname(root, running)
    return root


def uname(root: Path, into: kernelpkg.Unpacked) -> None:
    (root / "proc/sys/kernel/osrelease").write_text(into.release + "\n")
    (root / "proc/sys/kernel/version").write_text(into.uname_version + "\n")


def boot(root: Path, kernel: StandinKernel, into: kernelpkg.Unpacked) -> None:
    uname(root, into)
    kernel.release, kernel.version = into.release, into.uname_version
    kernel.reboot()


def new_kernel_key(root: Path, release: str) -> tuple[ArtifactKey, runner.BuildRequest]:
    """What Falco 0.40 will ask for once ``release`` (installed under ``root``) runs."""
    facts = hostfacts.read(root, "web-1")
    installed = next(k for k in facts.installed_kernels if k.release == release)
    named = kernelnames.name(facts.booted(installed), FalcoVersion.parse(FALCO))
    if not isinstance(named, KernelId):
        raise SystemExit(f"Falco {FALCO} names no driver for {release}: {named.reason}")
    key = ArtifactKey.for_kernel(named, driver_version(FALCO), DriverKind.KMOD)
    return key, runner.BuildRequest(named, key.driver_version, (DriverKind.KMOD,),
                                    uname_release=release)


def falco_open(kernel: StandinKernel, timeout: float = 600.0) -> float:
    """The moment a Falco holds the module open (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        module = kernel.loaded().get("falco")
        if module is not None and module.holders:
            return time.monotonic()
        time.sleep(0.01)
    raise SystemExit("Falco did not open its module in time")


def reboot(site: Site, daemon: Daemon, root: Path, kernel: StandinKernel,
           into: kernelpkg.Unpacked, drop: ArtifactKey | None = None,
           ) -> tuple[float, Daemon, bool]:
    """Seconds from the daemon's start after a reboot into ``into`` (with ``drop`` gone
    from the store while it was down) to Falco on its module, and whether it built."""
    daemon.stop()
    before = daemon.status()["passes"]
    site.falco().stop(timeout=2)
    if drop is not None:
        site.store.remove(drop)
    boot(root, kernel, into)
    start = time.monotonic()
    again = site.daemon(*daemon_args(root))
    seconds = falco_open(kernel) - start
    status = again.wait_for(lambda s: s["phase"] == "idle" and s["passes"] > before,
                            timeout=600, why="the boot pass")
    if status["lastPass"]["result"] != "ok":
        raise SystemExit(f"the boot pass failed: {status['lastPass']}")
    built = any(o["op"] == "build" for o in status["lastPass"]["outcomes"])
    return seconds, again, built


def daemon_args(root: Path) -> list[str]:
    return ["--host-root", str(root), "--source", SOURCE, "--base-image", BASE_IMAGE]


def main() -> None:
    logs.configure(level="warning")
    found = kernelpkg.cached()
    if len(found) < 2:
        raise SystemExit("two cached Debian kernels are needed: python -m tests.support.kernelpkg")
    images = standins()
    kernel = images.kernel
    images.falco(FALCO)
    images.loader(FALCO)
    tmp = Path(tempfile.mkdtemp(prefix="bench-kernel-upgrade-"))
    newest, running = (kernelpkg.unpack(d, tmp / d.release) for d in found[:2])
    site = Site(tmp, images.client, images.falco_repository)
    try:
        root = host_root(tmp, running)
        boot(root, kernel, running)
        falcohost.publish_standin_driver(site.store, root, FALCO, DriverKind.KMOD)
        site.state_dir.mkdir()
        (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
        (site.state_dir / "cache").symlink_to(CACHE_ROOT / "cache")
        revision = site.push({"web.yaml": falcohost.host_yaml(
            FALCO, "kmod", name=site.name, image=images.falco_repository,
            loader_image=images.loader_repository)})

        # The prebuild, untimed: into the daemon's own store and state dir.
        key, request = new_kernel_key(newest.install(host_root(tmp / "probe", running)),
                                      newest.release)
        config = runner.BuildConfig(site.state_dir, site.store.root, SOURCE, BASE_IMAGE,
                                    jobs=1, timeout=1800)
        (outcome,) = runner.build_all([request], config, Docker(site.client), Store(config.store))
        if outcome.error is not None:
            raise SystemExit(str(outcome.error))

        daemon = site.daemon(*daemon_args(root))
        daemon.applied(revision)
        before = daemon.status()["passes"]
        start = time.monotonic()
        newest.install(root)
        status = daemon.wait_for(
            lambda s: s["passes"] > before and s["phase"] == "idle"
            and "kernel" in s["lastPass"]["trigger"], timeout=120, why="the kernel's pass")
        url = f"http://127.0.0.1:{site.port}/{key.relpath.replace('+', '%2B')}"
        answered = client.head_status(url, timeout=30)
        ready = time.monotonic()
        assert answered == 200, f"HEAD {url} answered {answered}"
        upgrade = ready - start
        builds = [o for o in status["lastPass"]["outcomes"] if o["op"] == "build"]

        prebuilt, daemon, built_a = reboot(site, daemon, root, kernel, newest)
        cold, daemon, built_b = reboot(site, daemon, root, kernel, newest, drop=key)
        daemon.stop()
    finally:
        site.cleanup()

    print(f"Falco {FALCO} kmod, {running.release} -> {newest.release}, one run each")
    print(f"(a) package unpacked -> driver ready at its URL (prebuilt, "
          f"{len(builds)} build change(s) in that pass): {upgrade:7.2f} s")
    print("(b) daemon start after the reboot -> Falco on its module:")
    print(f"    driver prebuilt      {prebuilt:7.2f} s  (build in the boot pass: {built_a})")
    print(f"    driver not prebuilt  {cold:7.2f} s  (build in the boot pass: {built_b})")
    print(f"    ratio prebuilt / not prebuilt: {prebuilt / cold:5.3f}")


if __name__ == "__main__":
    main()
