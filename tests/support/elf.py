"""Minimal ELF objects for tests: a module's .modinfo or a probe's identity sections,
laid out as the kernel's build and clang write them."""

from __future__ import annotations

import struct

from reconciler.model.versions import SemVer

ET_REL = 1


def make_elf(machine: int, sections: dict[str, bytes], *, elf_type: int = ET_REL,
             big_endian: bool = False) -> bytes:
    """A minimal ELF64 relocatable object holding ``sections`` (and a .shstrtab)."""
    order = ">" if big_endian else "<"
    names = b"\0"
    offsets = {}
    for name in [*sections, ".shstrtab"]:
        offsets[name] = len(names)
        names += name.encode() + b"\0"
    body = b""
    headers = [struct.pack(order + "IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    data_start = 64
    for name, content in [*sections.items(), (".shstrtab", names)]:
        headers.append(struct.pack(order + "IIQQQQIIQQ", offsets[name], 1, 0, 0,
                                   data_start + len(body), len(content), 0, 0, 1, 0))
        body += content
    shoff = data_start + len(body)
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + b"\0" * 9
    header = ident + struct.pack(order + "HHIQQQIHHHHHH", elf_type, machine, 1, 0, 0, shoff,
                                 0, 64, 0, 0, 64, len(headers), len(headers) - 1)
    return header + body + b"".join(headers)


def pack_version(text: str) -> int:
    """libscap's packing of major.minor.patch into one integer."""
    version = SemVer.parse(text)
    return (version.major << 44) | (version.minor << 24) | version.patch


def probe_identity_sections(api: str, schema: str, *, big_endian: bool = False) -> dict[str, bytes]:
    order = ">" if big_endian else "<"
    return {"api_version": struct.pack(order + "Q", pack_version(api)),
            "schema_version": struct.pack(order + "Q", pack_version(schema))}


def module_bytes(release: str, api: str | None = None, schema: str | None = None) -> bytes:
    """An x86_64 module for ``release`` carrying ``api``/``schema`` in .modinfo if given."""
    fields = b"license=GPL\0vermagic=" + release.encode() + b" SMP mod_unload \0name=falco\0"
    if api is not None and schema is not None:
        fields += f"api_version={api}\0schema_version={schema}\0".encode()
    return make_elf(62, {".text": b"\x90", ".modinfo": fields})
