"""The kernel string an x86 boot image carries: the ``uname -r`` and ``uname -v`` it boots as.

The x86 boot protocol (2.00 and later) puts a setup header in the first sectors of a
bzImage, uncompressed. Its 16-bit little-endian ``kernel_version`` field at 0x20E points,
relative to 0x200, at a NUL-terminated string the kernel build writes as
``<uname -r> (<user>@<host>) <uname -v>``, and ``uname -v`` always starts with ``#``::

    6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian ...

Nothing here trusts the bytes: every offset is bounds-checked, and an image that is not a
bzImage (an arm64 ``Image.gz``, a truncated file) is a ``Garbled`` with the reason, never
an exception. Reading the file is ``edges.host.kernels``' job.
"""

from __future__ import annotations

from dataclasses import dataclass

BOOT_FLAG_OFFSET = 0x1FE  # 0xAA55, little-endian, as on any boot sector
SETUP_SECTS_OFFSET = 0x1F1  # setup sectors after the boot sector; 0 means 4
MAGIC_OFFSET = 0x202
MAGIC = b"HdrS"
PROTOCOL_OFFSET = 0x206
VERSION_POINTER_OFFSET = 0x20E
POINTER_BASE = 0x200
MAX_STRING = 512  # the string is a few dozen bytes; anything longer is not one

# The setup code is at most 1 + 255 sectors: the string lies within them.
MAX_SETUP_BYTES = 256 * 512
# What a reader needs to hand over to ``kernel_string``: the whole setup code.
READ_LIMIT = MAX_SETUP_BYTES


@dataclass(frozen=True)
class KernelString:
    """The setup header's string, split: ``release`` and ``version`` as uname reports them."""

    release: str  # uname -r
    built_by: str  # user@host inside the parentheses
    version: str  # uname -v, from its '#'


@dataclass(frozen=True)
class Garbled:
    """The image holds no kernel string we can trust; ``reason`` says what was wrong."""

    reason: str


def kernel_string(image: bytes) -> KernelString | Garbled:  # noqa: PLR0911 - one per check
    """The kernel string of a bzImage's first ``READ_LIMIT`` bytes (or fewer, for a short file)."""
    if len(image) < VERSION_POINTER_OFFSET + 2:
        return Garbled(f"{len(image)} bytes are too short for an x86 setup header")
    if image[MAGIC_OFFSET:MAGIC_OFFSET + 4] != MAGIC:
        return Garbled(f"no x86 setup header (no HdrS magic at 0x202{_looks_like(image)})")
    if int.from_bytes(image[BOOT_FLAG_OFFSET:BOOT_FLAG_OFFSET + 2], "little") != 0xAA55:
        return Garbled("no x86 setup header (no 0xAA55 boot flag at 0x1FE)")
    protocol = int.from_bytes(image[PROTOCOL_OFFSET:PROTOCOL_OFFSET + 2], "little")
    if protocol < 0x200:
        return Garbled(f"boot protocol {protocol >> 8}.{protocol & 0xFF:02} has no kernel_version")
    pointer = int.from_bytes(image[VERSION_POINTER_OFFSET:VERSION_POINTER_OFFSET + 2], "little")
    if pointer == 0:
        return Garbled("the setup header's kernel_version field is 0: no string")
    start = pointer + POINTER_BASE
    sectors = image[SETUP_SECTS_OFFSET] or 4
    setup_end = (sectors + 1) * 512
    if start >= setup_end or start >= len(image):
        return Garbled(f"kernel_version points at 0x{start:X}, outside the setup code "
                       f"(0x{min(setup_end, len(image)):X} bytes)")
    end = image.find(b"\0", start, min(start + MAX_STRING, setup_end, len(image)))
    if end < 0:
        return Garbled(f"the string at 0x{start:X} has no NUL within {MAX_STRING} bytes")
    return split(image[start:end])


def split(raw: bytes) -> KernelString | Garbled:
    """``<release> (<user>@<host>) #<version>`` into its parts."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return Garbled(f"the kernel string {raw[:80]!r} is not ASCII")
    if not text.isprintable():
        return Garbled(f"the kernel string {text[:80]!r} holds control characters")
    release, sep, rest = text.partition(" (")
    close = rest.find(") #")
    if not sep or not release or " " in release or close < 0:
        return Garbled(f"the kernel string {text[:80]!r} is not '<release> (<builder>) #...'")
    return KernelString(release=release, built_by=rest[:close], version=rest[close + 2:])


def _looks_like(image: bytes) -> str:
    """A hint for the reason: what the file seems to be instead."""
    if image.startswith(b"\x1f\x8b"):
        return ": gzip data, such as an arm64 Image.gz"
    if image[0x38:0x3C] == b"ARM\x64":
        return ": an arm64 Image"
    if image.startswith(b"MZ") and image[4:8] == b"zimg":
        return ": an EFI zboot image"
    return ""
