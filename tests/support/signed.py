"""Real signed modules for tests: one Debian shipped, from a linux-image package this
machine already holds (apt's cache, or the tests' own download folder)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEB_FOLDERS = (Path("/var/cache/apt/archives"), Path("/var/cache/falco-reconciler-tests/debs"))
MODULE = "crc7.ko"  # small, and in every Debian kernel


def linux_image_deb() -> Path | None:
    for folder in DEB_FOLDERS:
        found = sorted(folder.glob("linux-image-[0-9]*.deb")) if folder.is_dir() else []
        if found:
            return found[-1]
    return None


def debian_module(out: Path) -> bytes:
    """A module as Debian's kernel package ships it, signed at Debian's kernel build
    (the test is skipped where no such package is on the machine)."""
    deb = linux_image_deb()
    if deb is None or shutil.which("dpkg-deb") is None:
        pytest.skip("no linux-image .deb (or no dpkg-deb) on this machine")
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                         check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out), "--wildcards", f"*/{MODULE}"], input=tar,
                   check=True)
    (path,) = out.rglob(MODULE)
    return path.read_bytes()
