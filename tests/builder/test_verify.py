"""verify: a module or probe is judged from its own ELF bytes, as modinfo would read them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.builder import verify
from reconciler.errors import InvalidDriver
from reconciler.model.artifacts import DriverKind
from reconciler.model.versions import DriverIdentity
from tests.support.elf import make_elf, probe_identity_sections

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
    with pytest.raises(InvalidDriver, match=message):
        verify.check_module(data, RELEASE, "amd64", "falco")


def test_a_probe_must_be_an_ebpf_object() -> None:
    verify.check_probe(make_elf(verify.EM_BPF, {"tracepoint/x": b"\0" * 8}))
    with pytest.raises(InvalidDriver, match="not an eBPF object"):
        verify.check_probe(make_elf(verify.EM_X86_64, {".text": b"\x90"}))


def test_check_reads_the_file_and_describes_it(tmp_path: Path) -> None:
    probe = tmp_path / "probe.o"
    probe.write_bytes(make_elf(verify.EM_BPF, {}))
    assert "eBPF object" in verify.check(probe, DriverKind.EBPF, RELEASE, "x86_64", "falco")


IDENTITY = DriverIdentity.parse("8.0.3", "3.5.0")


def test_a_module_must_carry_the_identity_its_source_declared(tmp_path: Path) -> None:
    module = tmp_path / "falco.ko"
    fields = MODINFO + b"api_version=8.0.3\0schema_version=3.5.0\0"
    module.write_bytes(make_elf(verify.EM_X86_64, {".modinfo": fields}))
    assert verify.check(module, DriverKind.KMOD, RELEASE, "x86_64", "falco",
                        expected=IDENTITY).endswith(", API 8.0.3 / schema 3.5.0")
    other = DriverIdentity.parse("8.0.4", "3.5.0")
    with pytest.raises(InvalidDriver, match=(
            r"^carries API 8\.0\.3 / schema 3\.5\.0 in its \.modinfo api_version/"
            r"schema_version, but its source declares API 8\.0\.4 / schema 3\.5\.0$")):
        verify.check(module, DriverKind.KMOD, RELEASE, "x86_64", "falco", expected=other)
    module.write_bytes(make_elf(verify.EM_X86_64, {".modinfo": MODINFO}))
    with pytest.raises(InvalidDriver, match="^" + re.escape(
            "no .modinfo api_version/schema_version: expected API 8.0.3 / schema 3.5.0, "
            "as its source declares") + "$"):
        verify.check(module, DriverKind.KMOD, RELEASE, "x86_64", "falco", expected=IDENTITY)


def test_a_probe_carries_its_identity_in_two_packed_sections(tmp_path: Path) -> None:
    probe = tmp_path / "probe.o"
    probe.write_bytes(make_elf(verify.EM_BPF, probe_identity_sections("8.0.3", "3.5.0")))
    assert "API 8.0.3 / schema 3.5.0" in verify.check(
        probe, DriverKind.EBPF, RELEASE, "x86_64", "falco", expected=IDENTITY)
    probe.write_bytes(make_elf(verify.EM_BPF, probe_identity_sections("8.0.3", "3.6.1")))
    with pytest.raises(InvalidDriver, match=re.escape(
            "carries API 8.0.3 / schema 3.6.1 in its api_version/schema_version sections")):
        verify.check(probe, DriverKind.EBPF, RELEASE, "x86_64", "falco", expected=IDENTITY)
