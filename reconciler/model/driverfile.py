"""What a driver file says about itself, read from its ELF bytes: machine, type, sections,
and its identity (API and schema version).

A kernel module carries its identity in ``.modinfo`` as ``api_version=M.m.p`` and
``schema_version=M.m.p`` (what ``modinfo`` prints). A legacy eBPF probe carries it in two
sections of its own, ``api_version`` and ``schema_version``, each one 64-bit integer in
the object's byte order that packs major (19 bits at 44), minor (20 bits at 24) and patch
(24 bits at 0), the layout libscap unpacks. Pure functions over a ``read(offset, size)``
callable, so the store can read a few sections through a descriptor without loading
the whole file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.errors import InvalidDriver
from reconciler.model.artifacts import DriverKind
from reconciler.model.versions import DriverIdentity, SemVer

EM_X86_64 = 62
EM_AARCH64 = 183
EM_BPF = 247
ET_REL = 1
SHT_NOBITS = 8
PROBE_IDENTITY_SECTIONS = ("api_version", "schema_version")

Reader = Callable[[int, int], bytes]




@dataclass(frozen=True)
class ElfInfo:
    elf_type: int
    machine: int
    byte_order: str  # "<" or ">", for the integers inside sections
    sections: dict[str, bytes]


def read_elf(data: bytes) -> ElfInfo:
    """The type, machine and every section's content of an ELF file held in memory."""
    return read_elf_from(lambda offset, size: data[offset:offset + size], len(data))


def read_elf_from(read: Reader, size: int, only: Iterable[str] | None = None) -> ElfInfo:
    """As ``read_elf``, reading through ``read``; with ``only``, just those sections."""
    head = read(0, 64)
    if len(head) < 52 or head[:4] != b"\x7fELF":
        raise InvalidDriver("not an ELF file")
    klass, endian = head[4], head[5]
    if klass not in (1, 2) or endian not in (1, 2):
        raise InvalidDriver("not a valid ELF header")
    order = "<" if endian == 1 else ">"
    try:
        if klass == 2:
            (e_type, machine, _v, _entry, _phoff, shoff, _flags, _eh, _phes, _phn,
             shentsize, shnum, shstrndx) = struct.unpack_from(order + "HHIQQQIHHHHHH", head, 16)
            fmt = order + "IIQQQQIIQQ"
        else:
            (e_type, machine, _v, _entry, _phoff, shoff, _flags, _eh, _phes, _phn,
             shentsize, shnum, shstrndx) = struct.unpack_from(order + "HHIIIIIHHHHHH", head, 16)
            fmt = order + "IIIIIIIIII"
        table = read(shoff, shnum * shentsize)
        raw = [struct.unpack_from(fmt, table, i * shentsize) for i in range(shnum)]
    except struct.error as exc:
        raise InvalidDriver(f"truncated ELF file: {exc}") from exc
    wanted = None if only is None else set(only)
    sections: dict[str, bytes] = {}
    if raw and shstrndx < len(raw):
        names = _section_bytes(read, size, raw[shstrndx])
        for header in raw:
            name_end = names.find(b"\0", header[0])
            name = names[header[0]:name_end].decode("ascii", "replace")
            if wanted is not None and name not in wanted:
                continue
            sections[name] = b"" if header[1] == SHT_NOBITS else _section_bytes(read, size, header)
    return ElfInfo(e_type, machine, order, sections)


def _section_bytes(read: Reader, size: int, header: tuple[int, ...]) -> bytes:
    offset, length = header[4], header[5]
    if offset + length > size:
        raise InvalidDriver("truncated ELF file: a section runs past the end")
    return read(offset, length)


def modinfo(info: ElfInfo) -> dict[str, str]:
    """The ``key=value`` pairs of a module's ``.modinfo`` section (last one wins)."""
    fields: dict[str, str] = {}
    for entry in info.sections.get(".modinfo", b"").split(b"\0"):
        key, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep:
            fields[key] = value
    return fields


def unpack_version(value: int) -> SemVer:
    """libscap's packed version: major 19 bits at 44, minor 20 at 24, patch 24 at 0."""
    return SemVer((value >> 44) & ((1 << 19) - 1), (value >> 24) & ((1 << 20) - 1),
                  value & ((1 << 24) - 1))


def identity(info: ElfInfo, kind: DriverKind) -> DriverIdentity | None:
    """The identity the file carries, or None when it carries none (or not readably)."""
    try:
        if kind is DriverKind.KMOD:
            fields = modinfo(info)
            if "api_version" not in fields or "schema_version" not in fields:
                return None
            return DriverIdentity.parse(fields["api_version"], fields["schema_version"])
        packed = []
        for name in PROBE_IDENTITY_SECTIONS:
            content = info.sections.get(name, b"")
            if len(content) != 8:
                return None
            packed.append(unpack_version(struct.unpack(info.byte_order + "Q", content)[0]))
        return DriverIdentity(packed[0], packed[1])
    except ValueError:
        return None


def identity_sections(kind: DriverKind) -> tuple[str, ...]:
    """The sections ``identity`` needs for ``kind``."""
    return (".modinfo",) if kind is DriverKind.KMOD else PROBE_IDENTITY_SECTIONS
