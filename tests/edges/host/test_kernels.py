"""Installed kernels read from host roots holding real Debian kernel packages.

The packages are bookworm's own ``linux-image-<abi>-cloud-amd64`` (tests/support/kernelpkg.py),
unpacked as dpkg does; a layout they do not have (ostree, arm64) is made from their files
and each test says what it stands in for.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest

from reconciler.edges.host import facts as hostfacts
from reconciler.edges.host import kernels
from reconciler.model import bootimage
from reconciler.model.host import InstalledKernel, VersionSource
from tests.edges.host.test_facts import write_host
from tests.support.kernelpkg import Unpacked

RUNNING = "6.1.0-99-cloud-amd64"  # a running kernel that is no package under the root
RUNNING_V = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.999-1 (2027-01-01)"


def host(root: Path, *installed: Unpacked, release: str = RUNNING,
         version: str = RUNNING_V) -> Path:
    write_host(root, release=release + "\n", version=version + "\n")
    for kernel in installed:
        kernel.install(root)
    return root


def with_status(root: Path, kernel: Unpacked, status: str) -> Path:
    """``root`` (a host) with ``kernel`` installed but its image empty, so only the dpkg
    ``status`` text can give the version."""
    kernel.install(root, status=False)
    (root / kernel.image).write_bytes(b"")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status)
    return root


def found(root: Path) -> dict[str, InstalledKernel]:
    return {k.release: k for k in hostfacts.read(root).installed_kernels}


def in_file(image: Path) -> re.Match[bytes]:
    """The kernel string found in the image by a plain search, as ``strings | grep`` would."""
    match = re.search(rb"(\d+\.\d+\.\d+-[\w.-]+) \(([^()\0]+)\) (#\d+ [ -~]+)\0",
                      image.read_bytes()[:bootimage.READ_LIMIT])
    assert match, f"no kernel string in {image}"
    return match


def test_the_setup_header_gives_the_exact_uname_of_a_real_debian_image(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    newest = debian_kernels[0]
    root = host(tmp_path, newest)
    got = found(root)[newest.release]
    match = in_file(root / newest.image)
    assert got == InstalledKernel(
        release=newest.release, version=match[3].decode(), source=VersionSource.SETUP_HEADER,
        image=newest.image,
        detail=f"{newest.image}: setup header, built by {match[2].decode()}")
    assert match[1].decode() == newest.release == newest.deb.package.removeprefix("linux-image-")
    # Debian's uname -v names its package version, and then the build date.
    assert re.fullmatch(rf"#1 SMP PREEMPT_DYNAMIC Debian {re.escape(newest.deb.version)} "
                        r"\(\d{4}-\d\d-\d\d\)", got.version)


def test_two_real_kernels_are_listed_by_release_and_the_running_one_is_marked(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    newest, older = debian_kernels
    root = host(tmp_path, newest, older, release=older.release,
                version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (as /proc says it)")
    listed = hostfacts.read(root).installed_kernels
    assert [k.release for k in listed] == sorted([newest.release, older.release])
    by_release = {k.release: k for k in listed}
    assert by_release[older.release] == InstalledKernel(
        older.release, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (as /proc says it)",
        VersionSource.RUNNING, older.image, "the running kernel: proc/sys/kernel/version")
    assert by_release[newest.release].source is VersionSource.SETUP_HEADER
    assert newest.deb.version in by_release[newest.release].version


def test_a_running_kernel_not_under_the_root_is_not_listed(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """``kernel_release`` names it; ``installed_kernels`` lists what is on disk."""
    root = host(tmp_path, debian_kernels[0])
    assert list(found(root)) == [debian_kernels[0].release]
    assert hostfacts.read(write_host(tmp_path / "bare")).installed_kernels == ()


def test_the_running_kernel_counts_with_its_modules_alone(tmp_path: Path) -> None:
    """A container that sees lib/modules but no boot/ still lists the running kernel."""
    root = host(tmp_path)
    (root / f"lib/modules/{RUNNING}/kernel").mkdir(parents=True)
    assert found(root) == {RUNNING: InstalledKernel(
        RUNNING, RUNNING_V, VersionSource.RUNNING, "",
        "the running kernel: proc/sys/kernel/version")}


def test_modules_left_behind_by_a_removed_kernel_are_no_kernel(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    root = host(tmp_path, debian_kernels[0])
    (root / "lib/modules/6.1.0-40-cloud-amd64/updates/dkms").mkdir(parents=True)
    (root / "lib/modules/.hidden-5.10").mkdir()
    (root / "lib/modules/not-a-folder").write_text("")
    assert list(found(root)) == [debian_kernels[0].release]


def test_dpkg_gives_the_version_when_the_image_is_arm64_gzip(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """Stands in for Debian arm64, whose vmlinuz is a gzip'd Image: the real package, its
    image replaced by gzip data so no setup header can be read."""
    newest = debian_kernels[0]
    root = host(tmp_path, newest)
    image = root / newest.image
    image.write_bytes(gzip.compress((root / newest.image).read_bytes(), mtime=0))
    got = found(root)[newest.release]
    assert got.source is VersionSource.DPKG
    assert got.version == f"#1 SMP PREEMPT_DYNAMIC Debian {newest.deb.version}"
    assert got.detail == (f"var/lib/dpkg/status: {newest.deb.package} {newest.deb.version}; "
                          f"{newest.image}: no x86 setup header (no HdrS magic at 0x202: "
                          "gzip data, such as an arm64 Image.gz)")


def test_the_dpkg_version_matches_the_setup_header_but_for_the_date(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """On the real package both sources agree: the build flags come from its config."""
    for kernel in debian_kernels:
        root = host(tmp_path / kernel.release, kernel)
        from_header = found(root)[kernel.release].version
        (root / kernel.image).write_bytes(b"")
        from_dpkg = found(root)[kernel.release]
        assert from_dpkg.source is VersionSource.DPKG
        assert from_header == f"{from_dpkg.version} " + from_header.rsplit(" ", 1)[1]


def test_an_unreadable_image_falls_back_to_dpkg(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """/proc/self/mem is a regular file whose first bytes cannot be read (EIO): a read
    error even for root, who can read a mode-0600 vmlinuz."""
    newest = debian_kernels[0]
    root = host(tmp_path, newest)
    (root / newest.image).unlink()
    (root / newest.image).symlink_to("/proc/self/mem")
    got = found(root)[newest.release]
    assert got.source is VersionSource.DPKG
    assert f"{newest.image}: cannot read it: Input/output error" in got.detail


@pytest.mark.parametrize(
    ("garble", "reason"),
    [
        (lambda b: b[:0x180], "384 bytes are too short for an x86 setup header"),
        (lambda b: b[:0x202] + b"HdrX" + b[0x206:], "no HdrS magic at 0x202"),
        (lambda b: b[:0x20E] + b"\xff\xff" + b[0x210:], "kernel_version points at 0x101FF"),
    ],
    ids=["truncated", "wrong-magic", "pointer-out-of-range"],
)
def test_garbled_real_images_fall_back_to_dpkg_and_say_why(
    tmp_path: Path, debian_kernels: list[Unpacked], garble: object, reason: str
) -> None:
    newest = debian_kernels[0]
    root = host(tmp_path, newest)
    image = root / newest.image
    assert callable(garble)
    image.write_bytes(garble(image.read_bytes()))
    got = found(root)[newest.release]
    assert (got.source, got.version) == (
        VersionSource.DPKG, f"#1 SMP PREEMPT_DYNAMIC Debian {newest.deb.version}")
    assert reason in got.detail


def test_an_image_of_another_release_is_not_trusted(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """The older package's image under the newer one's name: its setup header names the
    older release, so the version comes from the newer one's package."""
    newest, older = debian_kernels
    root = host(tmp_path, newest)
    shutil.copyfile(older.tree / older.image, root / newest.image)
    got = found(root)[newest.release]
    assert got.source is VersionSource.DPKG
    assert newest.deb.version in got.version and older.deb.version not in got.version
    assert f"its setup header names {older.release!r}, not {newest.release!r}" in got.detail


def test_without_image_header_or_package_the_version_is_hash_one(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    newest = debian_kernels[0]
    root = host(tmp_path)
    newest.install(root, status=False)
    (root / newest.image).write_bytes(b"\x1f\x8b")
    got = found(root)[newest.release]
    assert (got.version, got.source) == ("#1", VersionSource.DEFAULT)
    assert got.detail.endswith("; var/lib/dpkg/status: none")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("Package: base-files\nVersion: 12\n")
    assert found(root)[newest.release].detail.endswith(
        f"var/lib/dpkg/status: no installed {newest.deb.package} or "
        f"{newest.deb.package}-unsigned")


def test_a_removed_but_not_purged_package_says_nothing(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    newest = debian_kernels[0]
    root = with_status(host(tmp_path), newest,
                       newest.deb.status_stanza("deinstall ok config-files"))
    assert found(root)[newest.release].source is VersionSource.DEFAULT


def test_an_unsigned_package_gives_the_version_too(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    newest = debian_kernels[0]
    stanza = newest.deb.status_stanza().replace(
        f"Package: {newest.deb.package}\n", f"Package: {newest.deb.package}-unsigned\n")
    root = with_status(host(tmp_path), newest, stanza)
    got = found(root)[newest.release]
    assert got.source is VersionSource.DPKG
    assert got.detail.startswith(f"var/lib/dpkg/status: {newest.deb.package}-unsigned ")


@pytest.mark.parametrize("merged_usr", [False, True])
def test_the_ostree_layout_keeps_the_image_beside_the_modules(
    tmp_path: Path, debian_kernels: list[Unpacked], merged_usr: bool
) -> None:
    """Fedora/ostree: usr/lib/modules/<release>/vmlinuz and no boot/ (Fedora links lib to
    usr/lib). The real Debian bzImage stands in for Fedora's (both are x86 bzImages)."""
    newest = debian_kernels[0]
    root = host(tmp_path)
    modules = root / "usr/lib/modules" / newest.release
    modules.mkdir(parents=True)
    if merged_usr:
        (root / "lib").symlink_to("usr/lib")
    shutil.copyfile(newest.tree / newest.image, modules / "vmlinuz")
    got = found(root)[newest.release]
    assert (got.source, got.image) == (
        VersionSource.SETUP_HEADER, f"usr/lib/modules/{newest.release}/vmlinuz")
    assert got.version == in_file(modules / "vmlinuz")[3].decode()


def test_merged_usr_lists_a_kernel_once(
    tmp_path: Path, debian_kernels: list[Unpacked]
) -> None:
    """Debian bookworm's merged /usr: lib is a link to usr/lib."""
    newest = debian_kernels[0]
    root = host(tmp_path)
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    newest.install(root)  # its lib/modules lands in usr/lib/modules through the link
    listed = hostfacts.read(root).installed_kernels
    assert [(k.release, k.source) for k in listed] == [
        (newest.release, VersionSource.SETUP_HEADER)]


def test_a_large_status_file_is_read_to_the_kernel_but_not_without_bound(
    tmp_path: Path, debian_kernels: list[Unpacked], monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = debian_kernels[0]
    filler = "".join(f"Package: lib{i}\nStatus: install ok installed\nVersion: 1.{i}\n"
                     f"Description: x\n {'y' * 100_000}\n\n" for i in range(50))
    root = with_status(host(tmp_path), newest, filler + newest.deb.status_stanza())
    assert found(root)[newest.release].source is VersionSource.DPKG
    monkeypatch.setattr(kernels, "MAX_STATUS_BYTES", 1024 * 1024)
    got = found(root)[newest.release]
    assert got.source is VersionSource.DEFAULT
    assert got.detail.endswith("var/lib/dpkg/status: no such package in its first 1 MiB "
                               "(read no further)")
