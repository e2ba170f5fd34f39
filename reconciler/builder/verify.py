"""Check a compiled driver before it may be published, by reading its ELF ourselves.

A module must be a relocatable ELF for the target machine whose ``.modinfo`` carries a
``vermagic`` that starts with the kernel release it was built for (what ``modinfo``
shows, and what the kernel checks at load time). A probe must be an ELF object for
``EM_BPF``. Either must carry the identity (API and schema version) its source tree
declared: a build whose configuration lost or changed it must not be published under a
driver version it does not fit. Pure functions over bytes; no tools needed on the host.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import InvalidDriver
from reconciler.model import driverfile, versions
from reconciler.model.artifacts import DriverKind, store_arch
from reconciler.model.driverfile import (
    EM_AARCH64,
    EM_BPF,
    EM_X86_64,
    ET_REL,
    ElfInfo,
    modinfo,
    read_elf,
)
from reconciler.model.versions import DriverIdentity

__all__ = [
    "EM_AARCH64", "EM_BPF", "EM_X86_64", "ET_REL", "ElfInfo", "InvalidDriver", "check",
    "check_fetched", "check_module", "check_probe", "modinfo", "read_elf",
]

_MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}


def check_module(data: bytes, kernel_release: str, arch: str, module_name: str) -> str:
    """Raise ``InvalidDriver`` unless ``data`` is a module for this kernel; returns the
    vermagic."""
    info = read_elf(data)
    if info.elf_type != ET_REL:
        raise InvalidDriver(f"not a relocatable ELF object (e_type {info.elf_type})")
    expected = _MACHINES.get(store_arch(arch))
    if info.machine != expected:
        raise InvalidDriver(f"built for ELF machine {info.machine}, not {arch} ({expected})")
    fields = modinfo(info)
    vermagic = fields.get("vermagic")
    if vermagic is None:
        raise InvalidDriver("no vermagic in .modinfo: not a kernel module")
    if vermagic.split(" ", 1)[0] != kernel_release:
        raise InvalidDriver(
            f"vermagic {vermagic.strip()!r} does not start with the kernel release "
            f"{kernel_release}"
        )
    name = fields.get("name")
    if name is not None and name != module_name:
        raise InvalidDriver(f"the module is named {name!r}, not {module_name!r}")
    return vermagic


def check_probe(data: bytes) -> None:
    """Raise ``InvalidDriver`` unless ``data`` is an eBPF ELF object."""
    info = read_elf(data)
    if info.machine != EM_BPF:
        raise InvalidDriver(f"not an eBPF object (ELF machine {info.machine}, not {EM_BPF})")


def check_identity(info: ElfInfo, kind: DriverKind, expected: DriverIdentity) -> None:
    """Raise ``InvalidDriver`` unless the file carries exactly ``expected``."""
    found = driverfile.identity(info, kind)
    where = ".modinfo api_version/schema_version" if kind is DriverKind.KMOD else (
        "api_version/schema_version sections")
    if found is None:
        raise InvalidDriver(f"no {where}: expected {expected}, as its source declares")
    if found != expected:
        raise InvalidDriver(f"carries {found} in its {where}, but its source declares {expected}")


def check(
    path: Path, kind: DriverKind, kernel_release: str, arch: str, module_name: str, *,
    expected: DriverIdentity | None = None,
) -> str:
    """Check a compiled file (and its identity, when ``expected``); returns a one-line
    description for the log."""
    data = path.read_bytes()
    described = f"{path.name}: {check_kind(data, kind, kernel_release, arch, module_name)}"
    if expected is not None:
        check_identity(read_elf(data), kind, expected)
        described += f", {expected}"
    return described


def check_kind(data: bytes, kind: DriverKind, kernel_release: str, arch: str,
               module_name: str) -> str:
    """The file is a module for this kernel (or an eBPF probe); says which, for the log."""
    if kind is DriverKind.KMOD:
        vermagic = check_module(data, kernel_release, arch, module_name)
        return f"kernel module, vermagic {vermagic.strip()!r}"
    check_probe(data)
    return f"eBPF object ({len(data)} bytes)"


def check_fetched(
    data: bytes, kind: DriverKind, kernel_release: str, arch: str, module_name: str, *,
    driver_version: str, stated: DriverIdentity | None = None,
) -> str:
    """Check a file an upstream sent, as ``check`` does a build, except that no source
    declares its identity here: it must carry one its driver version accepts (when the
    version is known) and, if the upstream stated one, exactly that. Returns a
    description."""
    described = check_kind(data, kind, kernel_release, arch, module_name)
    found = driverfile.identity(read_elf(data), kind)
    required = versions.required_identity(driver_version)
    if found is None:
        if required is not None:
            raise InvalidDriver(f"carries no API/schema version: {driver_version} needs "
                                f"{required}")
        return described
    problem = versions.identity_problem(driver_version, found)
    if problem is not None:
        raise InvalidDriver(problem)
    if stated is not None and found != stated:
        raise InvalidDriver(f"carries {found}, but its upstream states {stated}")
    return f"{described}, {found}"
