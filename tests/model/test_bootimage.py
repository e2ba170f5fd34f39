"""The x86 setup header's kernel string: found, split, and refused when the bytes lie.

Headers here are built the way the boot protocol lays them out; the real Debian images
are read in tests/edges/host/test_kernels.py.
"""

from __future__ import annotations

import pytest

from reconciler.model import bootimage
from reconciler.model.bootimage import Garbled, KernelString

DEBIAN = (b"6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) "
          b"#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)")


def header(string: bytes = DEBIAN, *, at: int = 0x3000, setup_sects: int = 31,
           magic: bytes = b"HdrS", protocol: int = 0x20F, pointer: int | None = None,
           size: int = 0x4000) -> bytes:
    """A bzImage's first ``size`` bytes: boot sector, setup header, the string at ``at``."""
    image = bytearray(size)
    image[0x1F1] = setup_sects
    image[0x1FE:0x200] = (0xAA55).to_bytes(2, "little")
    image[0x202:0x206] = magic
    image[0x206:0x208] = protocol.to_bytes(2, "little")
    image[0x20E:0x210] = (at - 0x200 if pointer is None else pointer).to_bytes(2, "little")
    image[at:at + len(string) + 1] = string + b"\0"
    return bytes(image[:size])


def test_the_string_splits_into_uname_r_builder_and_uname_v() -> None:
    assert bootimage.kernel_string(header()) == KernelString(
        release="6.1.0-57-cloud-amd64",
        built_by="debian-kernel@lists.debian.org",
        version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)",
    )


def test_ubuntu_and_fedora_strings_split_too() -> None:
    ubuntu = (b"6.2.0-26-generic (buildd@lcy02-amd64-049) "
              b"#26~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Thu Jul 13 16:27:29 UTC 2023")
    got = bootimage.kernel_string(header(ubuntu))
    assert isinstance(got, KernelString)
    assert (got.release, got.built_by) == ("6.2.0-26-generic", "buildd@lcy02-amd64-049")
    assert got.version == "#26~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Thu Jul 13 16:27:29 UTC 2023"
    fedora = (b"6.5.6-300.fc39.x86_64 (mockbuild@e1b3e5b1a2c4) "
              b"#1 SMP PREEMPT_DYNAMIC Fri Oct  6 19:57:21 UTC 2023")
    got = bootimage.kernel_string(header(fedora))
    assert isinstance(got, KernelString)
    assert got.version == "#1 SMP PREEMPT_DYNAMIC Fri Oct  6 19:57:21 UTC 2023"


def test_setup_sects_zero_means_four() -> None:
    """Old boot loaders' rule: 0 setup sectors are 4, so 5 * 512 bytes of setup code."""
    assert isinstance(bootimage.kernel_string(header(at=0x900, setup_sects=0)), KernelString)
    got = bootimage.kernel_string(header(at=0xA00, setup_sects=0))
    assert isinstance(got, Garbled) and "outside the setup code (0xA00 bytes)" in got.reason


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (header()[:0x100], "256 bytes are too short for an x86 setup header"),
        (b"", "0 bytes are too short"),
        (header(magic=b"HdrX"), "no HdrS magic at 0x202)"),
        (b"\x1f\x8b\x08\x00" + bytes(0x400), "gzip data, such as an arm64 Image.gz"),
        (bytes(0x38) + b"ARM\x64" + bytes(0x400), "an arm64 Image"),
        (b"MZ\0\0zimg" + bytes(0x400), "an EFI zboot image"),
        (header(protocol=0x1FF), "boot protocol 1.255 has no kernel_version"),
        (header(pointer=0), "kernel_version field is 0"),
        (header(pointer=0xFFFF), "points at 0x101FF, outside the setup code"),
        (header(at=0x3F00, size=0x3F10), "no NUL within 512 bytes"),
        (header(at=0x3000, size=0x2000), "points at 0x3000, outside the setup code (0x2000"),
        (header(DEBIAN.replace(b"#1", b"?1")), "is not '<release> (<builder>) #...'"),
        (header(b"6.1.0 \xff\xfe (x) #1"), "is not ASCII"),
        (header(b"6.1.0 (x) #1 \x07"), "holds control characters"),
        (header(b""), "is not '<release> (<builder>) #...'"),
    ],
    ids=["truncated", "empty", "wrong-magic", "gzip", "arm64", "zboot", "old-protocol",
         "null-pointer", "pointer-out-of-range", "no-nul", "pointer-past-end",
         "no-hash", "not-ascii", "control-chars", "empty-string"],
)
def test_garbled_images_give_a_reason_not_a_string(image: bytes, reason: str) -> None:
    got = bootimage.kernel_string(image)
    assert isinstance(got, Garbled)
    assert reason in got.reason


def test_no_boot_flag_is_garbled() -> None:
    image = bytearray(header())
    image[0x1FE:0x200] = b"\0\0"
    got = bootimage.kernel_string(bytes(image))
    assert isinstance(got, Garbled) and "0xAA55" in got.reason


def test_the_string_may_not_run_past_the_setup_code() -> None:
    """A NUL found only beyond the setup sectors is not the end of this string."""
    image = bytearray(header(at=0x1000, setup_sects=7))  # setup code ends at 0x1000
    got = bootimage.kernel_string(bytes(image))
    assert isinstance(got, Garbled) and "outside the setup code" in got.reason
    image = bytearray(header(b"6.1 (x) #1 " + b"A" * 600, at=0x0F00, setup_sects=7))
    got = bootimage.kernel_string(bytes(image))
    assert isinstance(got, Garbled) and "no NUL" in got.reason
