"""The host's facts as a value: what a Falco loader reads about its host.

Reading them from a host root is ``edges.host.facts``' job; naming drivers from them is
``model.kernelnames``'.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class VersionSource(enum.StrEnum):
    """Where an installed kernel's ``uname -v`` was read from, best first."""

    RUNNING = "running"  # it is the running kernel: proc/sys/kernel/version
    SETUP_HEADER = "setup-header"  # the x86 boot protocol's kernel_version string
    DPKG = "dpkg"  # var/lib/dpkg/status: the linux-image-<release> package's version
    DEFAULT = "default"  # nothing said: ``#1``, as a fresh kernel build reports


@dataclass(frozen=True, order=True)
class InstalledKernel:
    """A kernel installed under the host root: the ``uname -r`` and ``uname -v`` it will
    report once booted, and where each was found (``facts`` says so)."""

    release: str  # lib/modules/<release>
    version: str  # the whole uname -v it will report
    source: VersionSource
    image: str = ""  # its kernel image, relative to the host root (boot/vmlinuz-<release>)
    detail: str = ""  # the evidence in words: the file or package the version came from


@dataclass(frozen=True)
class HostFacts:
    """Everything a Falco loader reads about its host, as strings."""

    hostname: str
    kernel_release: str
    kernel_version: str
    machine: str
    os_id: str
    os_version_id: str = ""
    os_release: tuple[tuple[str, str], ...] = ()
    # Which file ``os_release`` came from ("etc/os-release", "usr/lib/os-release"; "" when
    # neither exists). The loaders read only etc/os-release, and count it as present even
    # when it is empty, so the file matters apart from its content.
    os_release_file: str = ""
    # Text of etc/VERSION: None when absent (its presence alone makes the loaders say minikube).
    minikube_version: str | None = None
    # Which of the legacy release files exist (etc/debian_version, etc/centos-release,
    # etc/redhat-release), in that order.
    legacy_release_files: tuple[str, ...] = ()
    # Every kernel installed under the host root (the running one included when its
    # modules are there), sorted by release.
    installed_kernels: tuple[InstalledKernel, ...] = ()

    def booted(self, kernel: InstalledKernel) -> HostFacts:
        """These facts as they will be once ``kernel`` runs: what its loader will read."""
        return replace(self, kernel_release=kernel.release, kernel_version=kernel.version)

    def os_field(self, key: str) -> str:
        """One os-release value, ``''`` when absent."""
        return dict(self.os_release).get(key, "")

    def os_has(self, key: str) -> bool:
        """Whether os-release assigns ``key`` at all (falcoctl tells absent from empty)."""
        return key in dict(self.os_release)

    @property
    def has_os_release(self) -> bool:
        """Whether an os-release file (either one) was found."""
        return bool(self.os_release_file)

    @property
    def has_etc_os_release(self) -> bool:
        """Whether etc/os-release exists, the only one Falco's loaders read."""
        return self.os_release_file == "etc/os-release"


@dataclass(frozen=True)
class Newest:
    """What a ``newestKernel`` pattern resolved to in the host's apt lists (``edges.host.apt``
    reads them): a release, or why there is none."""

    pattern: str
    release: str | None
    reason: str = ""
