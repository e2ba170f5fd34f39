"""Values shared by the build tests (plain module: conftest files are not imported)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.builder import runner
from reconciler.model.artifacts import DriverKind, KernelId

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
