"""The kernel a driver is tested on, from the distribution package it came from.

A ``linux-image-*`` package (Debian's, Ubuntu's) holds ``boot/vmlinuz-<release>``;
``dpkg-deb --fsys-tarfile`` streams its files (whatever compression the package uses) and
only that member is kept. Images are cached by the package's sha256, so a package is read
once (and hashed once per file, see ``_package_sha256``); the result names the image's own
sha256, read each time, which a load test records.

An image kept as a plain file (the one a build's ``kernelUrls`` brought: an ``.rpm``'s
``lib/modules/<release>/vmlinuz``, a tarball's ``boot/vmlinuz-<release>``) is cached by
its own sha256, and only an x86 bzImage (the one kind QEMU boots here) is taken.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reconciler.edges import atomic
from reconciler.edges.store.verifier import sha256_file
from reconciler.errors import LoadTestError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VMLINUZ = re.compile(r"^(?:\./)?boot/vmlinuz-(?P<release>[^/]+)$")
_SETUP_MAGIC = (0x202, b"HdrS")  # x86 boot protocol: the setup header's signature


@dataclass(frozen=True)
class KernelImage:
    path: Path
    release: str
    sha256: str


def from_package(deb: Path, cache: Path) -> KernelImage:
    """The kernel image in ``deb``, extracted into ``cache`` unless it already is."""
    try:
        package_sha = _package_sha256(deb, cache)
    except OSError as exc:
        raise LoadTestError(f"cannot read the kernel package {deb}: {exc}") from exc
    folder = cache / package_sha
    found = sorted(folder.glob("vmlinuz-*")) if folder.is_dir() else []
    if found:
        image = found[0]
        return KernelImage(image, image.name.removeprefix("vmlinuz-"), sha256_file(image))
    folder.mkdir(parents=True, exist_ok=True)
    return _extract(deb, folder)


def _package_sha256(deb: Path, cache: Path) -> str:
    """The package's sha256, read once per file: a stamp named after the file's identity
    (path, device, inode, size, mtime and ctime; writing to a file changes its ctime)
    keeps it, so a test per driver of the same kernel does not hash 30 MB each time."""
    info = deb.stat()
    identity = "\0".join(str(part) for part in (
        deb.resolve(), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns,
        info.st_ctime_ns))
    stamp = cache / "stamps" / hashlib.sha256(identity.encode()).hexdigest()
    try:
        known = stamp.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        known = ""
    if _SHA256.fullmatch(known):
        return known
    digest = sha256_file(deb)
    atomic.write_bytes(stamp, digest.encode())
    return digest


def from_file(image: Path, release: str, cache: Path) -> KernelImage:
    """The kernel image ``image`` of ``release``, copied into ``cache`` by its sha256
    unless it already is there (so a test never boots a file that changes under it)."""
    try:
        with image.open("rb") as handle:
            head = handle.read(_SETUP_MAGIC[0] + len(_SETUP_MAGIC[1]))
        sha = sha256_file(image)
    except OSError as exc:
        raise LoadTestError(f"cannot read the kernel image {image}: {exc}") from exc
    if head[_SETUP_MAGIC[0]:] != _SETUP_MAGIC[1]:
        raise LoadTestError(f"{image} is not an x86 kernel image (no bzImage setup header): "
                            "the load test boots x86_64 kernels only")
    target = cache / sha / f"vmlinuz-{release}"
    if target.is_file():
        return KernelImage(target, release, sha)
    with image.open("rb") as source:
        _copy(source, target, expected=sha, what=str(image))
    return KernelImage(target, release, sha)


def release_of(image: Path) -> str:
    """The release an x86 bzImage names in its setup header (the string ``kernel_version``
    points at: ``6.1.0-57-cloud-amd64 (debian-kernel@...) #1 SMP ...``), its first word."""
    try:
        with image.open("rb") as handle:
            head = handle.read(0x10000)
    except OSError as exc:
        raise LoadTestError(f"cannot read the kernel image {image}: {exc}") from exc
    offset = int.from_bytes(head[0x20E:0x210], "little")
    start = 0x200 + offset
    text = head[start:head.find(b"\0", start)] if offset and b"\0" in head[start:] else b""
    words = text.decode(errors="replace").split()
    if head[_SETUP_MAGIC[0]:_SETUP_MAGIC[0] + 4] != _SETUP_MAGIC[1] or not words:
        raise LoadTestError(f"{image} is not an x86 kernel image that names its release "
                            "(no bzImage setup header with a kernel version)")
    return words[0]


def _extract(deb: Path, folder: Path) -> KernelImage:
    try:
        process = subprocess.Popen(["dpkg-deb",  # noqa: S607 - found on PATH, as a shell would
                                    "--fsys-tarfile", str(deb)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise LoadTestError(f"cannot run dpkg-deb to read {deb}: {exc}") from exc
    assert process.stdout is not None  # Popen with stdout=PIPE always has one
    image: KernelImage | None = None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
            for member in tar:
                matched = _VMLINUZ.match(member.name)
                if matched and member.isfile():
                    image = _keep(tar, member, folder, matched["release"])
                    break
    except tarfile.TarError as exc:
        raise LoadTestError(f"{deb} is not a readable package: {exc}") from exc
    finally:
        process.kill()
        _out, err = process.communicate()
    if image is None:
        said = err.decode(errors="replace").strip()
        raise LoadTestError(f"{deb} holds no boot/vmlinuz-*: expected a linux-image-* "
                            f"package{': ' + said if said else ''}")
    return image


def _keep(tar: tarfile.TarFile, member: tarfile.TarInfo, folder: Path,
          release: str) -> KernelImage:
    source = tar.extractfile(member)
    if source is None:
        raise LoadTestError(f"cannot read {member.name} from the kernel package")
    target = folder / f"vmlinuz-{release}"
    return KernelImage(target, release, _copy(source, target, expected=None, what=member.name))


def _copy(source: IO[bytes], target: Path, *, expected: str | None, what: str) -> str:
    """Write ``source`` to ``target`` atomically; its sha256, which must be ``expected``
    (when given) or nothing is written."""
    digest = hashlib.sha256()
    with atomic.atomic_writer(target) as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
        if expected is not None and digest.hexdigest() != expected:
            raise LoadTestError(f"the kernel image {what} changed while it was read")
    return digest.hexdigest()
