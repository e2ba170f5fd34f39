"""verify: a module or probe is judged from its own ELF bytes, as modinfo would read them."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from reconciler.builder import verify
from reconciler.model.artifacts import DriverKind


def make_elf(machine: int, sections: dict[str, bytes], *, elf_type: int = verify.ET_REL,
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


RELEASE = "6.1.0-57-cloud-amd64"
MODINFO = (b"license=GPL\0vermagic=" + RELEASE.encode()
           + b" SMP preempt mod_unload modversions \0name=falco\0")


def test_a_module_for_this_kernel_passes_and_its_vermagic_is_returned() -> None:
    data = make_elf(verify.EM_X86_64, {".text": b"\x90", ".modinfo": MODINFO})
    assert verify.check_module(data, RELEASE, "x86_64", "falco").startswith(RELEASE + " ")
    assert verify.modinfo(verify.read_elf(data))["name"] == "falco"


def test_big_endian_elf_is_read_too() -> None:
    data = make_elf(verify.EM_AARCH64, {".modinfo": MODINFO}, big_endian=True)
    assert verify.check_module(data, RELEASE, "arm64", "falco")


@pytest.mark.parametrize(("data", "message"), [
    (make_elf(verify.EM_X86_64, {".modinfo": MODINFO.replace(b"6.1.0-57", b"6.1.0-58")}),
     "does not start with the kernel release"),
    (make_elf(verify.EM_X86_64, {".modinfo": MODINFO.replace(b"-57-cloud", b"-57-cloudx")}),
     "does not start with the kernel release"),
    (make_elf(verify.EM_X86_64, {".modinfo": b"license=GPL\0"}), "no vermagic"),
    (make_elf(verify.EM_AARCH64, {".modinfo": MODINFO}), "ELF machine 183"),
    (make_elf(verify.EM_X86_64, {".modinfo": MODINFO}, elf_type=3), "not a relocatable"),
    (make_elf(verify.EM_X86_64, {".modinfo": MODINFO.replace(b"=falco", b"=scap")}),
     "named 'scap'"),
    (b"#!/bin/sh\necho not a module\n" * 3, "not an ELF file"),
    (make_elf(verify.EM_X86_64, {".modinfo": MODINFO})[:200], "truncated"),
])
def test_a_module_that_is_not_for_this_kernel_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(verify.InvalidDriver, match=message):
        verify.check_module(data, RELEASE, "amd64", "falco")


def test_a_probe_must_be_an_ebpf_object() -> None:
    verify.check_probe(make_elf(verify.EM_BPF, {"tracepoint/x": b"\0" * 8}))
    with pytest.raises(verify.InvalidDriver, match="not an eBPF object"):
        verify.check_probe(make_elf(verify.EM_X86_64, {".text": b"\x90"}))


def test_check_reads_the_file_and_describes_it(tmp_path: Path) -> None:
    probe = tmp_path / "probe.o"
    probe.write_bytes(make_elf(verify.EM_BPF, {}))
    assert "eBPF object" in verify.check(probe, DriverKind.EBPF, RELEASE, "x86_64", "falco")
