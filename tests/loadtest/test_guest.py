"""Real VM boots (QEMU, single-threaded TCG) of real Debian kernels with the module and
probe a real build of the libs 8.0.0+driver tree made, and scap-open built from the same
tree. Nothing stands in: the kernel's own loader judges the module, its verifier the
probe. The passing module is booted by tests/commands/test_load_test.py (through the CLI);
here are the cases that must fail, each with the kernel's own words."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from reconciler.loadtest import guest, tester
from reconciler.loadtest.result import Outcome
from reconciler.model.artifacts import DriverKind
from tests.support.loadtest import Built

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_module_on_a_kernel_of_another_abi_is_refused_in_the_kernels_words(
    built: Built,
) -> None:
    """The module built for the newest ABI, booted on the previous ABI's kernel: the
    kernel refuses it ("disagrees about version of symbol module_layout"), nothing is
    captured, and the result says so with its VM log kept."""
    subject = guest.Subject(built.module, DriverKind.KMOD)
    result = tester.test(subject, built.other_kernel.deb, built.space, built.setup)

    assert result.outcome is Outcome.FAILED
    assert not result.loaded
    assert result.kernel_release == built.other_kernel.release
    assert "falco: disagrees about version of symbol module_layout" in result.reasons
    assert result.events == 0
    assert Path(result.vm_log).is_file()


def versions_entries(module: bytes) -> tuple[int, int]:
    """(offset, count) of the ``__versions`` section: 64-byte entries of an 8-byte CRC and
    a 56-byte symbol name (x86_64, Linux 6.1)."""
    shoff, = struct.unpack_from("<Q", module, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", module, 0x3A)
    names_offset = struct.unpack_from("<Q", module, shoff + shstrndx * shentsize + 0x18)[0]
    for index in range(shnum):
        header = shoff + index * shentsize
        name_at = names_offset + struct.unpack_from("<I", module, header)[0]
        if module[name_at:module.index(b"\0", name_at)] == b"__versions":
            offset, size = struct.unpack_from("<QQ", module, header + 0x18)
            return offset, size // 64
    raise AssertionError("the module has no __versions section")


def test_a_module_with_a_tampered_symbol_crc_is_refused_in_the_kernels_words(
    built: Built, tmp_path: Path,
) -> None:
    """The right module for the right kernel, but one import's CRC changed (what a module
    built against other headers carries): the kernel names that symbol."""
    data = bytearray(built.module.read_bytes())
    offset, count = versions_entries(bytes(data))
    assert count > 1
    entry = offset + 64  # the first import after module_layout
    symbol = bytes(data[entry + 8:entry + 64]).split(b"\0")[0].decode()
    crc, = struct.unpack_from("<Q", data, entry)
    struct.pack_into("<Q", data, entry, crc ^ 0x5A5A5A5A)
    tampered = tmp_path / built.module.name
    tampered.write_bytes(bytes(data))

    result = tester.test(guest.Subject(tampered, DriverKind.KMOD), built.own_kernel.deb,
                         built.space, built.setup)

    assert result.outcome is Outcome.FAILED
    assert f"falco: disagrees about version of symbol {symbol}" in result.reasons
    assert not result.loaded


def test_the_probe_passes_the_verifier_and_the_libscap_of_its_release_cannot_read_it(
    built: Built,
) -> None:
    """The legacy probe on the newest Debian 6.1 kernel: the verifier takes every program
    (loaded), but libscap 0.20 (the libs of 8.0.0+driver) cannot mmap the probe's perf
    buffers on a kernel with the CVE-2025-38563 fix (Debian 6.1.148+), so nothing is
    captured: never a silent pass, and not a broken driver either. The outcome is
    ``loaded`` (the driver loads; that userspace cannot read it), with libscap's words."""
    result = tester.test(guest.Subject(built.probe, DriverKind.EBPF), built.own_kernel.deb,
                         built.space, built.setup)

    assert result.loaded and result.libs_version == "0.20.0"
    assert result.outcome is Outcome.LOADED
    assert "CVE-2025-38563" in result.reasons[-1]
    assert result.summary().startswith("loaded: the driver loads; libs 0.20.0's userspace "
                                       f"cannot read it on {built.own_kernel.release}")
    assert any("the probe passed the verifier" in r and "unable to mmap the perf-buffer" in r
               for r in result.reasons), result.reasons
