"""Driver artifacts: what identifies one, and where it lives in the store and on the wire.

The layout is the one Falco's loaders download from (docs/driver-store.md)::

    <driverVersion>/<arch>/falco_<target>_<kernelRelease>_<kernelVersion>.ko   (kmod)
    <driverVersion>/<arch>/falco_<target>_<kernelRelease>_<kernelVersion>.o    (ebpf)

Falco < 0.32 asked for the same file without ``<arch>/``. The driver version carries a
``+`` (``2.0.0+driver``) that loaders send URL-encoded as ``%2B``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from reconciler.model.modes import DriverMode

DRIVER_NAME = "falco"
SHA_SUFFIX = ".sha256"  # the checksum sidecar beside each stored artifact


class DriverKind(enum.StrEnum):
    """The two artifact kinds a build can produce."""

    KMOD = "kmod"
    EBPF = "ebpf"

    @property
    def suffix(self) -> str:
        return _SUFFIX[self]


# The artifact each driver mode loads (modern_ebpf is built into Falco: none).
KIND_OF_MODE = {
    DriverMode.KMOD: DriverKind.KMOD,
    DriverMode.KMOD_PRELOADED: DriverKind.KMOD,
    DriverMode.EBPF: DriverKind.EBPF,
}


# A plain dict beside the property: ArtifactKey reads it for every key it makes.
_SUFFIX = {DriverKind.KMOD: ".ko", DriverKind.EBPF: ".o"}

# Manifests and driverkit speak Debian arch names; the store and URLs use `uname -m`.
_STORE_ARCH = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
_MANIFEST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SUPPORTED_ARCHES = ("amd64", "arm64")


def store_arch(arch: str) -> str:
    """``amd64`` -> ``x86_64``, ``arm64`` -> ``aarch64``; store names pass through."""
    try:
        return _STORE_ARCH[arch]
    except KeyError:
        raise ValueError(f"unsupported architecture {arch!r}: expected amd64 or arm64") from None


def manifest_arch(arch: str) -> str:
    """``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64`` (driverkit's names)."""
    return _MANIFEST_ARCH[store_arch(arch)]


# Targets whose kernel headers a build finds by itself, from the builder's apt sources
# (``linux-headers-<release>``); any other kernel builds only from its ``kernelUrls``.
APT_HEADER_TARGETS = frozenset({"debian"})


@dataclass(frozen=True, order=True)
class KernelId:
    """A kernel as a Falco loader names it: the parts of an artifact file name.

    ``arch`` is the store's spelling (``x86_64``, ``aarch64``).
    """

    target: str
    kernel_release: str
    kernel_version: str
    arch: str


class _KeyFields(NamedTuple):
    driver_version: str
    arch: str
    target: str
    kernel_release: str
    kernel_version: str
    kind: DriverKind
    # Derived from the fields above, once (see ArtifactKey).
    filename: str
    relpath: str


class ArtifactKey(_KeyFields):
    """One driver artifact: a kernel, a driver version and a kind.

    A tuple underneath: a large plan makes, hashes, sorts and names tens of thousands of
    keys (desired state, store observation, the diff, the output), and a tuple is made in
    one step where a frozen dataclass set each field separately, three times slower. Its
    file name and store path are derived once, when it is made. Keys order by driver
    version, arch, target, kernel release, kernel version, kind. Always make keys by
    calling ``ArtifactKey(...)``: ``_replace``/``_make`` would not derive the names.
    """

    __slots__ = ()

    def __new__(  # noqa: PLR0917 - a key's six parts, in the order keys sort by
        cls, driver_version: str, arch: str, target: str, kernel_release: str,
        kernel_version: str, kind: DriverKind,
    ) -> ArtifactKey:
        filename = f"{DRIVER_NAME}_{target}_{kernel_release}_{kernel_version}{_SUFFIX[kind]}"
        # Path inside the store, with a literal ``+``: ``2.0.0+driver/x86_64/falco_...ko``.
        relpath = f"{driver_version}/{arch}/{filename}"
        return tuple.__new__(cls, (
            driver_version, arch, target, kernel_release, kernel_version, kind, filename, relpath,
        ))

    def __getnewargs__(self) -> tuple[str, str, str, str, str, DriverKind]:
        # copy and pickle call __new__ with these: the six given fields, not the derived two.
        return (self.driver_version, self.arch, self.target, self.kernel_release,
                self.kernel_version, self.kind)

    def __repr__(self) -> str:
        return (f"ArtifactKey(driver_version={self.driver_version!r}, arch={self.arch!r}, "
                f"target={self.target!r}, kernel_release={self.kernel_release!r}, "
                f"kernel_version={self.kernel_version!r}, kind={self.kind!r})")

    @classmethod
    def for_kernel(cls, kernel: KernelId, driver_version: str, kind: DriverKind) -> ArtifactKey:
        return cls(
            driver_version=driver_version,
            arch=store_arch(kernel.arch),
            target=kernel.target,
            kernel_release=kernel.kernel_release,
            kernel_version=kernel.kernel_version,
            kind=kind,
        )

    @property
    def kernel(self) -> KernelId:
        return KernelId(self.target, self.kernel_release, self.kernel_version, self.arch)

    def url_path(self, *, with_arch: bool = True) -> str:
        """The path a loader requests, encoded as Falco's loaders encode it (``+`` -> ``%2B``)."""
        parts = [self.driver_version, self.arch, self.filename] if with_arch else [
            self.driver_version, self.filename]
        return "/" + "/".join(quote(p, safe="") for p in parts)

    def __str__(self) -> str:
        return self.relpath


_FILENAME = re.compile(
    rf"^{DRIVER_NAME}_(?P<target>[^_/]+)_(?P<release>[^/]+)_(?P<version>[^_/]+)\.(?P<ext>ko|o)$"
)


def parse_relpath(relpath: str) -> ArtifactKey | None:
    """The key of a store path (``2.0.0+driver/x86_64/falco_...ko``), or None if it is not one."""
    parts = relpath.split("/")
    if len(parts) != 3:
        return None
    driver_version, arch, filename = parts
    match = _FILENAME.match(filename)
    if not match or arch not in _MANIFEST_ARCH or not driver_version:
        return None
    kind = DriverKind.KMOD if match["ext"] == "ko" else DriverKind.EBPF
    return ArtifactKey(
        driver_version, arch, match["target"], match["release"], match["version"], kind
    )
