"""Installed kernels: every kernel under a host root, and the ``uname -v`` it will report.

A kernel is installed when it has a modules folder and a kernel image::

    lib/modules/<release>/  and  boot/vmlinuz-<release>          (Debian, Ubuntu, ...)
    usr/lib/modules/<release>/vmlinuz                            (Fedora, ostree)

A modules folder without an image is what removing a kernel package leaves behind (DKMS
builds, a depmod cache) and is not a kernel. The running kernel is the exception: it is
listed once its modules folder is there, image or not (containers often see no ``boot/``),
with the version it reports now (``proc/sys/kernel/version``). When not even its modules
folder is under the root, it is not listed: ``HostFacts.kernel_release`` always names
it, and ``installed_kernels`` says only what is on disk.

Each other kernel's ``uname -v`` comes from the first source that tells, and
``InstalledKernel.detail`` says which and why the ones before it did not:

1. the x86 setup header of its image (``model.bootimage``), when the release in it is the
   folder's;
2. its package in ``var/lib/dpkg/status`` (``model.kernelpackages``);
3. else ``#1``, what a kernel build reports by default.

Only plain, bounded file reads, no subprocess, and nothing here fails the facts: an
unreadable or garbled file is a reason in ``detail`` and the next source is tried.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from reconciler import logs
from reconciler.model import bootimage, kernelpackages
from reconciler.model.host import InstalledKernel, VersionSource

log = logs.get(__name__)

# usr/ first: with a merged /usr (lib a link to usr/lib) a kernel is named by its real path.
MODULES_DIRS = ("usr/lib/modules", "lib/modules")
DPKG_STATUS = "var/lib/dpkg/status"
# A status file of many thousand packages is some tens of MiB; stop reading beyond this.
MAX_STATUS_BYTES = 256 * 1024 * 1024
MAX_LINE = 64 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024


def find(root: Path, running_release: str, running_version: str) -> tuple[InstalledKernel, ...]:
    """Every kernel installed under ``root``, sorted by release (see the module's docstring)."""
    images = {release: _image(root, release, folders)
              for release, folders in _modules_folders(root).items()}
    found = {r: image for r, image in images.items() if image or r == running_release}
    wanted = frozenset(itertools.chain.from_iterable(
        kernelpackages.image_packages(r) for r in found if r != running_release))
    packages, status_note = _dpkg(root, wanted) if wanted else ({}, "")
    kernels = []
    for release, image in sorted(found.items()):
        if release == running_release:
            kernel = InstalledKernel(release, running_version, VersionSource.RUNNING, image,
                                     "the running kernel: proc/sys/kernel/version")
        else:
            kernel = _installed(root, release, image, packages, status_note)
        log.debug("facts.kernel", release=kernel.release, version=kernel.version,
                  source=str(kernel.source), detail=kernel.detail)
        kernels.append(kernel)
    return tuple(kernels)


def _modules_folders(root: Path) -> dict[str, list[str]]:
    """Release -> its modules folders, relative to the root (one, or two when unmerged)."""
    found: dict[str, list[str]] = {}
    seen: set[Path] = set()
    for parent in MODULES_DIRS:
        for entry in _folders(root / parent):
            try:
                real = entry.resolve()
            except OSError:
                continue
            if real in seen:  # merged /usr: lib/modules/<release> is the usr/ one
                continue
            seen.add(real)
            found.setdefault(entry.name, []).append(f"{parent}/{entry.name}")
    return found


def _folders(path: Path) -> Iterator[Path]:
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(".") and entry.is_dir():
            yield entry


def _image(root: Path, release: str, folders: list[str]) -> str:
    """The kernel image of ``release``, relative to the root; "" when there is none."""
    for rel in (f"boot/vmlinuz-{release}", *(f"{folder}/vmlinuz" for folder in folders)):
        if (root / rel).is_file():
            return rel
    return ""


def _installed(root: Path, release: str, image: str,
               packages: dict[str, kernelpackages.Package], status_note: str) -> InstalledKernel:
    notes: list[str] = []
    header = _setup_header(root / image)
    if isinstance(header, bootimage.KernelString) and header.release != release:
        header = bootimage.Garbled(f"its setup header names {header.release!r}, not {release!r}")
    if isinstance(header, bootimage.KernelString):
        return InstalledKernel(release, header.version, VersionSource.SETUP_HEADER, image,
                               f"{image}: setup header, built by {header.built_by}")
    notes.append(f"{image}: {header.reason}")

    package = next((packages[name] for name in kernelpackages.image_packages(release)
                    if name in packages), None)
    if package is not None:
        version = kernelpackages.uname_version(package, _uts_flags(root, release, notes))
        if version is not None:
            notes.insert(0, f"{DPKG_STATUS}: {package.name} {package.version}")
            return InstalledKernel(release, version, VersionSource.DPKG, image, "; ".join(notes))
        notes.append(f"{DPKG_STATUS}: {package.name} {package.version} is not a Debian or "
                     "Ubuntu kernel build")
    else:
        notes.append(status_note or f"{DPKG_STATUS}: no installed "
                     f"{' or '.join(kernelpackages.image_packages(release))}")
    return InstalledKernel(release, "#1", VersionSource.DEFAULT, image, "; ".join(notes))


def _setup_header(path: Path) -> bootimage.KernelString | bootimage.Garbled:
    try:
        with path.open("rb") as f:
            head = f.read(bootimage.READ_LIMIT)
    except OSError as exc:
        return bootimage.Garbled(f"cannot read it: {exc.strerror or exc}")
    return bootimage.kernel_string(head)


def _uts_flags(root: Path, release: str, notes: list[str]) -> str:
    rel = f"boot/config-{release}"
    try:
        with (root / rel).open(encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_CONFIG_BYTES)
    except OSError as exc:
        notes.append(f"{rel}: {exc.strerror or exc}: build flags taken as 'SMP'")
        return kernelpackages.uts_flags(None)
    return kernelpackages.uts_flags(text.splitlines())


def _dpkg(root: Path, wanted: frozenset[str]) -> tuple[dict[str, kernelpackages.Package], str]:
    """The installed ``wanted`` packages, and a note when the status file could not be read."""
    path = root / DPKG_STATUS
    cut: list[int] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            found = kernelpackages.status_entries(_bounded_lines(f, cut), wanted)
    except FileNotFoundError:
        return {}, f"{DPKG_STATUS}: none"
    except OSError as exc:
        return {}, f"{DPKG_STATUS}: cannot read it: {exc.strerror or exc}"
    if cut:
        return found, (f"{DPKG_STATUS}: no such package in its first {cut[0] // 2**20} MiB "
                       "(read no further)")
    return found, ""


def _bounded_lines(f: TextIO, cut: list[int]) -> Iterator[str]:
    """Lines of an open text file, each cut at MAX_LINE, at most MAX_STATUS_BYTES in all;
    stopping short appends the count read to ``cut``."""
    total = 0
    while True:
        line = f.readline(MAX_LINE)
        if not line:
            return
        if total >= MAX_STATUS_BYTES:
            log.warning("facts.dpkg_status_cut", path=f.name, read_chars=total)
            cut.append(total)
            return
        total += len(line)
        if not line.endswith("\n") and len(line) == MAX_LINE:
            # the rest of an overlong line is no field we read: skip to its end
            while (more := f.readline(MAX_LINE)) and not more.endswith("\n"):
                total += len(more)
            total += len(more)
            line = " " + line  # a continuation: never a field
        yield line
