"""Check a compiled driver before it may be published, by reading its ELF ourselves.

A module must be a relocatable ELF for the target machine whose ``.modinfo`` carries a
``vermagic`` that starts with the kernel release it was built for (what ``modinfo``
shows, and what the kernel checks at load time). A probe must be an ELF object for
``EM_BPF``. Pure functions over bytes; no tools needed on the host.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.artifacts import DriverKind, store_arch

EM_X86_64 = 62
EM_AARCH64 = 183
EM_BPF = 247
ET_REL = 1
_MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}


class InvalidDriver(ValueError):
    """The file is not the driver it claims to be."""


@dataclass(frozen=True)
class ElfInfo:
    elf_type: int
    machine: int
    sections: dict[str, bytes]


def read_elf(data: bytes) -> ElfInfo:
    """The type, machine and section contents of an ELF file (32 or 64 bit, either endian)."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise InvalidDriver("not an ELF file")
    klass, endian = data[4], data[5]
    if klass not in (1, 2) or endian not in (1, 2):
        raise InvalidDriver("not a valid ELF header")
    order = "<" if endian == 1 else ">"
    try:
        if klass == 2:
            (e_type, machine, _v, _entry, _phoff, shoff, _flags, _eh, _phes, _phn,
             shentsize, shnum, shstrndx) = struct.unpack_from(order + "HHIQQQIHHHHHH", data, 16)
            fmt = order + "IIQQQQIIQQ"
        else:
            (e_type, machine, _v, _entry, _phoff, shoff, _flags, _eh, _phes, _phn,
             shentsize, shnum, shstrndx) = struct.unpack_from(order + "HHIIIIIHHHHHH", data, 16)
            fmt = order + "IIIIIIIIII"
        raw = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    except struct.error as exc:
        raise InvalidDriver(f"truncated ELF file: {exc}") from exc
    sections: dict[str, bytes] = {}
    if raw and shstrndx < len(raw):
        names = _section_bytes(data, raw[shstrndx])
        for header in raw:
            name_end = names.find(b"\0", header[0])
            name = names[header[0]:name_end].decode("ascii", "replace")
            sections[name] = b"" if header[1] == 8 else _section_bytes(data, header)  # NOBITS
    return ElfInfo(e_type, machine, sections)


def _section_bytes(data: bytes, header: tuple[int, ...]) -> bytes:
    offset, size = header[4], header[5]
    if offset + size > len(data):
        raise InvalidDriver("truncated ELF file: a section runs past the end")
    return data[offset:offset + size]


def modinfo(info: ElfInfo) -> dict[str, str]:
    """The ``key=value`` pairs of a module's ``.modinfo`` section (last one wins)."""
    fields: dict[str, str] = {}
    for entry in info.sections.get(".modinfo", b"").split(b"\0"):
        key, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep:
            fields[key] = value
    return fields


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


def check(path: Path, kind: DriverKind, kernel_release: str, arch: str, module_name: str) -> str:
    """Check a compiled file; returns a one-line description for the log."""
    data = path.read_bytes()
    if kind is DriverKind.KMOD:
        vermagic = check_module(data, kernel_release, arch, module_name)
        return f"{path.name}: kernel module, vermagic {vermagic.strip()!r}"
    check_probe(data)
    return f"{path.name}: eBPF object ({len(data)} bytes)"
