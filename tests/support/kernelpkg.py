"""Real Debian kernel packages for tests: fetched once, cached, unpacked into host roots.

``python -m tests.support.kernelpkg`` (run by .ci/setup, as root, with apt reachable)
downloads the ``linux-image-<abi>-cloud-amd64`` packages bookworm's apt offers through the
``linux-image-cloud-amd64`` meta-package, one per ABI (the newest, from the security
suite, and the point release's), into the cache: ``$RECONCILER_TEST_DEB_CACHE``, else
``/var/cache/falco-reconciler-tests/debs``.

Tests never touch the network: ``cached()`` reads what is in the cache, and
``require(...)`` fails under CI=true (a CI machine whose setup did not fetch them is
broken) and skips elsewhere, saying how to fetch them. ``install`` lays a package out
under a host root as dpkg would: its files (``dpkg-deb -x``) and its stanza in
``var/lib/dpkg/status``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

META_PACKAGE = "linux-image-cloud-amd64"
DEFAULT_CACHE = "/var/cache/falco-reconciler-tests/debs"
_IMAGE_PACKAGE = re.compile(r"linux-image-(\d+\.\d+\.\d+-\d+-cloud-amd64)")
# dpkg writes a status stanza's known fields in this order, then the others as they came.
_STATUS_ORDER = ("Package", "Essential", "Protected", "Status", "Priority", "Section",
                 "Installed-Size", "Origin", "Maintainer", "Bugs", "Architecture",
                 "Multi-Arch", "Source", "Version", "Config-Version", "Replaces", "Provides",
                 "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks", "Conflicts",
                 "Enhances", "Conffiles", "Description")


def cache_dir() -> Path:
    return Path(os.environ.get("RECONCILER_TEST_DEB_CACHE", DEFAULT_CACHE))


@dataclass(frozen=True)
class KernelDeb:
    """One cached kernel image package and what its control file says."""

    deb: Path
    control: tuple[tuple[str, str], ...]  # (field, value) in the control file's order

    def field(self, name: str) -> str:
        return dict(self.control).get(name, "")

    @property
    def package(self) -> str:
        return self.field("Package")

    @property
    def version(self) -> str:
        return self.field("Version")

    @property
    def release(self) -> str:
        """The ``uname -r`` it installs as: its modules folder's name."""
        return self.package.removeprefix("linux-image-")

    def status_stanza(self, status: str = "install ok installed") -> str:
        """Its entry in var/lib/dpkg/status, as dpkg writes it once installed."""
        fields = dict(self.control)
        fields["Status"] = status
        order = [k for k in _STATUS_ORDER if k in fields] + [
            k for k, _ in self.control if k not in _STATUS_ORDER]
        return "".join(f"{k}: {fields[k]}\n" for k in order)


def parse_control(text: str) -> tuple[tuple[str, str], ...]:
    """deb822 fields, continuation lines kept in their value (as ``dpkg-deb -f`` prints)."""
    fields: list[list[str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields.append([key, value.strip()])
    return tuple((k, v) for k, v in fields)


def read_deb(deb: Path) -> KernelDeb:
    shown = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True,
                           text=True)
    return KernelDeb(deb, parse_control(shown.stdout))


def cached(directory: Path | None = None) -> list[KernelDeb]:
    """The cloud-amd64 kernel packages in the cache, newest ABI first (one per ABI)."""
    directory = directory or cache_dir()
    by_release: dict[str, KernelDeb] = {}
    for deb in sorted(directory.glob("linux-image-*-cloud-amd64_*_amd64.deb")):
        found = read_deb(deb)
        if _IMAGE_PACKAGE.fullmatch(found.package):
            by_release[found.release] = found
    return [by_release[r] for r in sorted(by_release, key=_abi, reverse=True)]


def require(count: int) -> list[KernelDeb]:
    """The ``count`` newest cached kernels; fail under CI=true, else skip, when fewer."""
    have = cached() if shutil.which("dpkg-deb") else []
    if len(have) >= count:
        return have[:count]
    reason = (f"{count} real Debian kernel package(s) needed, {len(have)} in {cache_dir()}: "
              "run `python -m tests.support.kernelpkg` (as .ci/setup does) to fetch them")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _abi(release: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", release))


# -- unpacking into a host root ------------------------------------------------------------

@dataclass(frozen=True)
class Unpacked:
    """A kernel package unpacked once per session; ``install`` puts it under host roots."""

    deb: KernelDeb
    tree: Path

    @property
    def release(self) -> str:
        return self.deb.release

    @property
    def image(self) -> str:
        return f"boot/vmlinuz-{self.release}"

    @property
    def uname_version(self) -> str:
        """What ``uname -v`` answers once this kernel runs: the part of its image's x86
        setup header string (``kernel_version``, 0x20E: an offset from 0x200) from "#"."""
        body = (self.tree / self.image).read_bytes()[:0x10000]
        if body[0x202:0x206] != b"HdrS":
            raise ValueError(f"{self.image} has no x86 setup header")
        start = 0x200 + int.from_bytes(body[0x20E:0x210], "little")
        text = body[start:body.index(b"\0", start)].decode()
        return text[text.index("#"):]

    def install(self, root: Path, *, status: bool = True) -> Path:
        """Its files under ``root`` and (``status``) its stanza in var/lib/dpkg/status.

        The modules are hard links into the session's tree (they are only looked at);
        ``boot/`` is copied, so a test may garble the image in place.
        """
        for top in sorted(self.tree.iterdir()):
            # a merged /usr links lib to usr/lib: install through the link, as dpkg does
            dest = (root / top.name).resolve()
            if top.name == "boot":
                shutil.copytree(top, dest, dirs_exist_ok=True)
            else:
                shutil.copytree(top, dest, dirs_exist_ok=True, copy_function=_link_or_copy)
        if status:
            path = root / "var/lib/dpkg/status"
            path.parent.mkdir(parents=True, exist_ok=True)
            before = path.read_text() if path.exists() else ""
            separator = "\n" if before and not before.endswith("\n\n") else ""
            path.write_text(before + separator + self.deb.status_stanza() + "\n")
        return root


def unpack(deb: KernelDeb, into: Path) -> Unpacked:
    """``dpkg-deb -x``: the package's files, as dpkg would install them."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb.deb), str(into)], check=True)
    return Unpacked(deb, into)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# -- fetching (the CI setup's job) ---------------------------------------------------------

def offered() -> list[tuple[str, str]]:
    """(package, version) of each ABI the meta-package's versions depend on, newest first."""
    madison = _run("apt-cache", "madison", META_PACKAGE)
    versions = list(dict.fromkeys(line.split("|")[1].strip()
                                  for line in madison.splitlines() if "|" in line))
    found: dict[str, str] = {}
    for version in versions:
        depends = _run("apt-cache", "depends", f"{META_PACKAGE}={version}")
        match = re.search(r"Depends: (linux-image-\S+-cloud-amd64)\b", depends)
        if match and match[1] not in found:
            found[match[1]] = version
    return sorted(found.items(), key=lambda item: _abi(item[0]), reverse=True)


def fetch(directory: Path | None = None, count: int = 2) -> list[Path]:
    """Download the ``count`` newest offered ABIs into the cache; present files are kept."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    got = []
    for package, version in offered()[:count]:
        target = directory / f"{package}_{version}_amd64.deb"
        if not target.exists():
            subprocess.run(["apt-get", "download", "-q", f"{package}={version}"],
                           cwd=directory, check=True)
        got.append(target)
    return got


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    for path in fetch():
        sys.stdout.write(f"{path}\n")
