"""Pure: which libs userspace a driver version and a Falco version come with, and the one
known case where a driver loads but a libs userspace cannot read it on a kernel.

The libs (userspace) version of each driver release and of each Falco release, from the
falcosecurity/libs tags (``<x.y.z>`` for libs, ``<x.y.z>+driver`` for drivers, cut from the
same release branch) and Falco's pinned libs version. libscap 0.21 and older cannot mmap the
legacy probe's perf buffers on kernels that carry the fix for CVE-2025-38563 (Debian
6.1.148 and later: "unable to mmap the perf-buffer for cpu 0: Cannot allocate memory");
libs 0.22.0 fixed it (falcosecurity/libs PR #2663). The probe is fine; the userspace is not.
"""

from __future__ import annotations

import re

# driver version -> the libs version tagged with it (the same commit of falcosecurity/libs;
# 7.2.1+driver sits between 0.17.2 and 0.17.3, 8.1.0+driver one commit before 0.21.0).
LIBS_OF_DRIVER = {
    "7.0.0+driver": "0.14.0", "7.2.0+driver": "0.17.0", "7.2.1+driver": "0.17.2",
    "7.3.0+driver": "0.18.0", "8.0.0+driver": "0.20.0", "8.1.0+driver": "0.21.0",
    "9.0.0+driver": "0.22.0", "9.1.0+driver": "0.23.0", "10.2.0+driver": "0.25.1",
}
# Falco release -> the libs version it pins (cmake/modules/falcosecurity-libs.cmake at the
# release's tag); a release not listed takes its minor's first, the oldest userspace.
LIBS_OF_FALCO = {
    "0.37.0": "0.14.2", "0.37.1": "0.14.3", "0.38.0": "0.17.1", "0.38.1": "0.17.2",
    "0.38.2": "0.17.3", "0.39.0": "0.18.1", "0.39.1": "0.18.1", "0.39.2": "0.18.2",
    "0.40.0": "0.20.0", "0.41.0": "0.21.0", "0.41.1": "0.21.0", "0.41.2": "0.21.0",
    "0.41.3": "0.21.0", "0.42.0": "0.22.1", "0.42.1": "0.22.2", "0.43.0": "0.23.1",
    "0.43.1": "0.23.2", "0.44.0": "0.25.2", "0.44.1": "0.25.4",
}
PERF_BUFFER_FIXED_IN = (0, 22, 0)
_PERF_BUFFER = re.compile(r"unable to mmap the perf-buffer for cpu .*Cannot allocate memory")


def version_tuple(version: str) -> tuple[int, ...] | None:
    found = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(part) for part in found.groups()) if found else None


def libs_of_driver(driver_version: str) -> str | None:
    return LIBS_OF_DRIVER.get(driver_version)


def libs_of_falco(falco_version: str) -> str | None:
    found = re.match(r"(\d+)\.(\d+)\.?(\d+)?", falco_version)
    if found is None:
        return None
    minor = f"{found[1]}.{found[2]}"
    exact = LIBS_OF_FALCO.get(f"{minor}.{found[3] or 0}")
    return exact or LIBS_OF_FALCO.get(f"{minor}.0")


def userspace_cannot_read(kind: str, libs_version: str, reasons: tuple[str, ...]) -> str | None:
    """Why the userspace of ``libs_version``, not the driver, failed this test, if it is
    the known case (the probe, libscap <= 0.21, the perf-buffer mmap refused, and nothing
    else wrong: no kernel complaint, no hang); else None."""
    libs = version_tuple(libs_version)
    if kind != "ebpf" or libs is None or libs >= PERF_BUFFER_FIXED_IN:
        return None
    if not reasons or not all(_PERF_BUFFER.search(reason) for reason in reasons):
        return None
    return ("libscap 0.21 and older cannot mmap the legacy probe's perf buffers on kernels "
            "with the fix for CVE-2025-38563 (fixed in libs 0.22.0)")


def older_userspaces(falcos: tuple[str, ...], tested_libs: str
                     ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The libs versions older than ``tested_libs`` that Falcos in ``falcos`` pin, each
    with those Falcos, oldest first: the userspaces a driver is tested with as well. A
    Falco whose libs version is not known is left out (nothing to build scap-open from),
    and so is a test whose userspace was a driver version (an unknown driver's libs)."""
    tested = version_tuple(tested_libs)
    if tested is None or tested[0] != 0 or "+" in tested_libs:  # libs releases are 0.x
        return ()
    by_libs: dict[str, list[str]] = {}
    for falco in sorted(set(falcos)):
        libs = libs_of_falco(falco)
        found = version_tuple(libs) if libs else None
        if libs and found is not None and found < tested:
            by_libs.setdefault(libs, []).append(falco)
    return tuple((libs, tuple(who)) for libs, who in
                 sorted(by_libs.items(), key=lambda item: version_tuple(item[0]) or ()))


def falco_cannot_read(falco_version: str, kind: str, tested_libs: str,
                      reasons: tuple[str, ...]) -> bool:
    """Whether Falco ``falco_version``'s own userspace would meet the same refusal as the
    tested userspace ``tested_libs`` did (both below the fix)."""
    falco_libs = libs_of_falco(falco_version)
    return (falco_libs is not None
            and userspace_cannot_read(kind, falco_libs, reasons) is not None
            and userspace_cannot_read(kind, tested_libs, reasons) is not None)


def tells_of_falco(falco_version: str, kind: str, tested_libs: str,
                   reasons: tuple[str, ...]) -> bool:
    """Whether a userspace of ``tested_libs`` failing to read a driver says that Falco
    ``falco_version`` cannot read it either: the same libs (it was that Falco's
    userspace), or both below the known fix."""
    return (tested_libs == libs_of_falco(falco_version)
            or falco_cannot_read(falco_version, kind, tested_libs, reasons))


def probe_warning(falco_version: str) -> str | None:
    """A Host's validation warning: its Falco's libscap cannot read the legacy probe on
    kernels with the CVE-2025-38563 fix (the probe loads; Falco captures nothing)."""
    libs = libs_of_falco(falco_version)
    found = version_tuple(libs) if libs else None
    if found is None or found >= PERF_BUFFER_FIXED_IN:
        return None
    return (f"warning: the driver loads; Falco {falco_version}'s userspace (libs {libs}) "
            "cannot read the legacy eBPF probe on kernels with the fix for CVE-2025-38563 "
            "(Debian 6.1.148 and later: unable to mmap the perf-buffer); use kmod or "
            "modern_ebpf there, or Falco 0.42+")
