"""Session fixtures for load tests: one real build (module and probe of the libs
8.0.0+driver release tree, for the newest cached Debian kernel) and one scap-open built
from the same tree, shared by every test that boots a VM. Import the fixtures into a
conftest to use them; the guest userspace is cached under the test build cache, so
reruns only pay for the driver build (whose headers are cached too)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import runner
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.edges.vm import qemu
from reconciler.loadtest import tester, userspace
from reconciler.model.artifacts import DriverKind
from tests.builder.helpers import CACHE_ROOT, request
from tests.support import kernelpkg

DRIVER_VERSION = "8.0.0+driver"


def fixtures_dir() -> Path:
    """The shared fixtures folder beside the repository (or a worktree's parent's)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "fixtures").is_dir():
            return parent / "shared" / "fixtures"
    return Path("/work/shared/fixtures")


def libs_tarball(version: str) -> Path:
    path = fixtures_dir() / f"falcosecurity-libs-{version}.tar.gz"
    if not path.is_file():
        _missing(f"{path} is missing: the libs release trees are test fixtures")
    return path


# libs release tags on the same commit as a driver release tag (falcosecurity/libs:
# 0.20.0 and 8.0.0+driver are both 22be2498, 0.25.1 and 10.2.0+driver both 296aedab), so
# the fixture tree of the one is, byte for byte, GitHub's archive of the other's tree.
SAME_TREE = {"0.20.0": "8.0.0+driver", "0.25.1": "10.2.0+driver"}


def libs_template(folder: Path) -> str:
    """A ``file://`` source template with ``{driverVersion}``, as the default GitHub
    archive template is: it reaches the fixture trees by driver tag and by libs tag."""
    folder.mkdir(parents=True, exist_ok=True)
    for tag in ("8.0.0+driver", "10.2.0+driver", *SAME_TREE):
        link = folder / f"falcosecurity-libs-{tag}.tar.gz"
        if not link.exists():
            link.symlink_to(libs_tarball(SAME_TREE.get(tag, tag)))
    return f"file://{folder}/falcosecurity-libs-{{driverVersion}}.tar.gz"


def require_vm() -> None:
    """QEMU and a static busybox, as .ci/setup installs them."""
    if not qemu.available() or shutil.which("busybox") is None:
        _missing("qemu-system-x86 and busybox-static are needed: run .ci/setup")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Built:
    """What one real build made, the kernels to boot, and the test's setup."""

    module: Path
    probe: Path
    own_kernel: kernelpkg.KernelDeb  # the kernel it was built for
    other_kernel: kernelpkg.KernelDeb  # another ABI of the same series
    space: userspace.GuestUserspace
    setup: tester.Setup


@pytest.fixture(scope="session")
def built(engine: Docker, docker_client: Any, base_image: str,
          tmp_path_factory: pytest.TempPathFactory) -> Built:
    require_vm()
    own, other = kernelpkg.require(2)
    state = tmp_path_factory.mktemp("loadtest-state")
    source = libs_template(state / "libs")
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (state / "cache").symlink_to(CACHE_ROOT / "cache")
    config = runner.BuildConfig(state_dir=state, store=state / "store", source=source,
                                base_image=base_image, jobs=2, timeout=1800.0)
    (outcome,) = runner.build_all(
        [request(own.release, DRIVER_VERSION, DriverKind.KMOD, DriverKind.EBPF)], config,
        Docker(docker_client), Store(config.store))
    assert outcome.error is None, str(outcome.error)
    module, probe = (artifact.path for artifact in outcome.artifacts)
    setup = tester.Setup(state, source, base_image)
    space = tester.prepare(engine, setup, DRIVER_VERSION)
    return Built(module, probe, own, other, space, setup)
