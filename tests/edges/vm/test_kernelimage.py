"""The kernel image from a real Debian linux-image package, extracted once and cached by
the package's sha256; a package without an image is refused by name."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from reconciler.edges.store.verifier import sha256_file
from reconciler.edges.vm import kernelimage
from reconciler.errors import LoadTestError
from tests.support import kernelpkg


def test_the_image_is_the_packages_vmlinuz_and_is_read_from_the_cache_after(
    tmp_path: Path,
) -> None:
    (deb,) = kernelpkg.require(1)
    image = kernelimage.from_package(deb.deb, tmp_path / "cache")
    unpacked = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb.deb), str(unpacked)], check=True)
    expected = (unpacked / "boot" / f"vmlinuz-{deb.release}").read_bytes()

    assert image.release == deb.release
    assert image.path.read_bytes() == expected
    assert image.sha256 == hashlib.sha256(expected).hexdigest()
    image.path.chmod(0o400)  # a second call must not write it again
    assert kernelimage.from_package(deb.deb, tmp_path / "cache") == image


def test_a_package_without_a_kernel_image_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: not-a-kernel\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: nothing\n")
    (root / "boot").mkdir()
    (root / "boot" / "config-6.1").write_text("# no image here\n")
    deb = tmp_path / "not-a-kernel.deb"
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(root), str(deb)], check=True,
                   capture_output=True)
    with pytest.raises(LoadTestError, match=r"holds no boot/vmlinuz-\*"):
        kernelimage.from_package(deb, tmp_path / "cache")


def test_a_package_is_hashed_once_per_file_and_again_once_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The package's sha256 is kept in a stamp named after the file's identity: the same
    file is not hashed again (the hash would fail here), a rewritten one is (its ctime,
    size or inode changed), so a stale image is never served for new content."""
    (deb,) = kernelpkg.require(1)
    copy = tmp_path / deb.deb.name
    copy.write_bytes(deb.deb.read_bytes())
    image = kernelimage.from_package(copy, tmp_path / "cache")

    def images_only(path: Path) -> str:  # the image's own sha256 is read each time
        assert path != copy, "the package was hashed again"
        return sha256_file(path)

    with monkeypatch.context() as patched:
        patched.setattr(kernelimage, "sha256_file", images_only)
        assert kernelimage.from_package(copy, tmp_path / "cache") == image

    copy.write_bytes(b"!<arch>\nnot a package any more\n")
    with pytest.raises(LoadTestError, match=r"not a readable package|holds no boot"):
        kernelimage.from_package(copy, tmp_path / "cache")


def test_an_image_file_is_cached_by_its_own_sha256(tmp_path: Path) -> None:
    """The vmlinuz a build's kernelUrls brought (here the real one of a Debian package,
    unpacked) is copied into the cache under its sha256 and named by it; a second call
    reads the cache."""
    (deb,) = kernelpkg.require(1)
    unpacked = kernelpkg.unpack(deb, tmp_path / "unpacked")
    kept = unpacked.tree / unpacked.image
    expected = hashlib.sha256(kept.read_bytes()).hexdigest()

    image = kernelimage.from_file(kept, deb.release, tmp_path / "cache")
    assert image.sha256 == expected
    assert image.release == deb.release
    assert image.path == tmp_path / "cache" / expected / f"vmlinuz-{deb.release}"
    assert image.path.read_bytes() == kept.read_bytes()
    image.path.chmod(0o400)  # a second call must not write it again
    assert kernelimage.from_file(kept, deb.release, tmp_path / "cache") == image
    assert kernelimage.release_of(kept) == deb.release  # its setup header names it


def test_a_file_that_is_not_an_x86_kernel_image_is_refused_and_not_cached(
    tmp_path: Path,
) -> None:
    """QEMU here boots x86 bzImages: an arm64 Image or any other file named vmlinuz is
    refused (the test cannot run), not booted into a failure the driver would be blamed
    for."""
    other = tmp_path / "vmlinuz"
    other.write_bytes(b"MZ" + bytes(0x300))  # an arm64/EFI image starts so, no HdrS
    with pytest.raises(LoadTestError, match="is not an x86 kernel image"):
        kernelimage.from_file(other, "6.1.0-57-arm64", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(LoadTestError, match="names its release"):
        kernelimage.release_of(other)
    with pytest.raises(LoadTestError, match="cannot read the kernel image"):
        kernelimage.from_file(tmp_path / "missing", "6.1.0-57-arm64", tmp_path / "cache")
