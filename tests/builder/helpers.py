"""Values shared by the build tests (plain module: conftest files are not imported)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.builder import runner
from reconciler.edges.docker import jobs
from reconciler.model.artifacts import DriverKind, KernelId
from reconciler.model.container import BindMount

CACHE_ROOT = Path(os.environ.get("RECONCILER_TEST_BUILD_CACHE",
                                 "/var/tmp/falco-reconciler-test-cache"))
DKMS_SOURCE = "deb:falcosecurity-scap-dkms"


def request(release: str, driver_version: str, *kinds: DriverKind,
            urls: tuple[str, ...] = ()) -> runner.BuildRequest:
    """A debian x86_64 request (kmod only unless kinds say otherwise)."""
    return runner.BuildRequest(
        KernelId("debian", release, "1", "x86_64"), driver_version,
        kinds or (DriverKind.KMOD,), urls,
    )


def download_header_debs(eng: jobs.Jobs, image: str, release: str, into: Path) -> list[Path]:
    """Debian's real header packages of ``release`` (linux-headers-<release> and the
    linux-headers/linux-kbuild packages it depends on), downloaded from the apt sources of
    ``image`` into ``into``: what a DriverBuild's kernelUrls would name."""
    into.mkdir(parents=True, exist_ok=True)
    fetched = eng.run(
        image,
        f"cd /debs && apt-get download linux-headers-{release} "
        f"$(apt-cache show --no-all-versions linux-headers-{release} "
        "| sed -n 's/^Depends: //p' | tr ',' '\\n' | grep -o 'linux-[a-z0-9.-]*' "
        "| grep -v compiler) 2>&1",
        mounts=[BindMount(str(into), "/debs", read_only=False)], network="host", timeout=600,
    )
    assert fetched.ok, fetched.output
    return sorted(into.glob("*.deb"))
