"""A kernel upgrade never takes Falco down: the daemon builds the new kernel's driver as soon
as its package is unpacked, and Falco starts on it after the reboot with no build.

What stands in for what:

- the host: a host root of the test's (Debian 12) running the real 6.1.0-50-cloud-amd64:
  its package installed as dpkg would (tests/support/kernelpkg.py), proc/sys/kernel's
  osrelease and version what that kernel reports (its image's setup header);
- the upgrade: the real 6.1.0-57-cloud-amd64 package unpacked into it while the daemon
  runs;
- the running kernel's driver: a stand-in published where its build would put it (one
  real build is what this test is about: the new kernel's, from trixie's
  falcosecurity-scap-dkms, with the build caches shared with tests/builder);
- the reboot: the daemon stopped, Falco's container stopped (its process dies with the
  machine), proc/sys/kernel switched to the new kernel's, and the stand-in kernel
  (tests/support/standin_kernel.py) booted into it: its ``release`` is the vermagic it
  accepts, its ``UNAME`` what ``uname`` answers in the loader's container, as a real
  container's uname is the host's running kernel;
- Falco 0.40 and its driver-loader image: the session's stand-ins; ``--privileged false``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.artifacts import DriverKind
from tests.builder.helpers import CACHE_ROOT
from tests.conftest import BASE_IMAGE
from tests.daemon.conftest import Site, boot, builders_started
from tests.support import falcohost, standin
from tests.support.kernelpkg import Unpacked
from tests.support.standin_kernel import StandinKernel

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FALCO = "0.40.0"
SOURCE = "deb:falcosecurity-scap-dkms/trixie"
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def kernels(status: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    """What ``reconciler status`` says of each kernel: (release, running, driver ready)."""
    return [(k["release"], k["running"], k["ready"]) for k in status["kernels"]]


def vermagic(path: Path) -> str:
    found = re.search(rb"\x00vermagic=([^\x00]*)", path.read_bytes())
    return found[1].decode() if found else ""


def test_a_kernel_upgrade_is_prebuilt_and_the_reboot_needs_no_build(
    site: Site, booted: StandinKernel, standins: Any, make_host_root: Any,
    debian_kernels: list[Unpacked], docker_client: Any,
) -> None:
    newest, running = debian_kernels
    root = make_host_root(release=running.release, version=running.uname_version,
                          os_release=DEBIAN_12)
    running.install(root)
    boot(root, booted, running)
    falcohost.publish_standin_driver(site.store, root, FALCO, DriverKind.KMOD)
    standins.falco(FALCO)
    standins.loader(FALCO)
    revision = site.push({"web.yaml": falcohost.host_yaml(
        FALCO, "kmod", name=site.name, image=standins.falco_repository,
        loader_image=standins.loader_repository)})
    site.state_dir.mkdir()
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (site.state_dir / "cache").symlink_to(CACHE_ROOT / "cache")  # headers, sources: reused
    build = ["--host-root", str(root), "--source", SOURCE, "--base-image", BASE_IMAGE]

    daemon = site.daemon(*build)
    assert kernels(daemon.applied(revision)) == [(running.release, True, True)]
    falco_id = site.falco().id

    upgraded = time.time()
    newest.install(root)
    status = daemon.wait_for(
        lambda s: s["phase"] == "idle" and "kernel" in s["lastPass"]["trigger"]
        and any(o["op"] == "build" for o in s["lastPass"]["outcomes"]),
        timeout=900, why="a pass woken by the kernel that builds its driver")
    # Falco 0.40 on Debian names the kernel from the package version in uname -v.
    relpath = "8.0.0+driver/x86_64/falco_debian_6.1.192-3-cloud-amd64_1.ko"
    builds = [(o["name"], o["result"]) for o in status["lastPass"]["outcomes"]
              if o["op"] == "build"]
    assert builds == [(relpath, "ok")], status["lastPass"]
    assert kernels(status) == [(running.release, True, True), (newest.release, False, True)]
    assert vermagic(site.store.root / relpath).startswith(f"{newest.release} SMP ")
    assert (site.falco().id, site.falco().status) == (falco_id, "running")  # not touched
    assert daemon.proc is not None
    assert builders_started(docker_client, upgraded, daemon.proc.pid) >= 1  # it was real

    daemon.stop()
    before = daemon.status()["passes"]
    site.falco().stop(timeout=2)
    boot(root, booted, newest)
    since = time.time()
    rebooted = site.daemon(*build)
    assert rebooted.proc is not None
    pid = rebooted.proc.pid
    status = rebooted.wait_for(
        lambda s: s["pid"] == pid and s["phase"] == "idle" and s["passes"] > before,
        timeout=120, why="the first pass after the reboot")
    assert status["lastPass"]["result"] == "ok", status["lastPass"]
    assert kernels(status) == [(newest.release, True, True), (running.release, False, True)]
    assert [o["op"] for o in status["lastPass"]["outcomes"]
            if o["op"] == "build"] == [], status["lastPass"]
    assert builders_started(docker_client, since, pid) == 0
    assert site.falco().status == "running"
    module = booted.loaded()["falco"]
    assert module.vermagic.startswith(f"{newest.release} SMP ") and module.holders
    # The module is the one built before the reboot: trixie's package stamps it with its
    # libs release (version=0.20.0); Falco checks only its API and schema versions.
    api, schema = standin.DRIVER_IDENTITY["8.0.0+driver"]
    assert (module.api_version, module.schema_version) == (api, schema)
    assert f"(API {api}, schema {schema})" in site.falco().logs().decode(errors="replace")
