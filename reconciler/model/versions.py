"""Falco releases: which driver version each one loads, and which loader it ships.

The table is docs/falco-versions.md's. Up to 0.36 Falco's image runs the bash
``falco-driver-loader``; from 0.37 it runs falcoctl, which reads other variables.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from reconciler.errors import UnknownDriverVersion


@dataclass(frozen=True, order=True)
class FalcoVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> FalcoVersion:
        """``0.32.2`` (an image tag may add a suffix: ``0.37.1-debian``)."""
        match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$", text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a Falco release: expected a version like 0.37.1")
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class LoaderKind(enum.StrEnum):
    """Whose rules name the driver: the bash loader's or falcoctl's."""

    BASH = "bash"  # scripts/falco-driver-loader, Falco <= 0.36
    FALCOCTL = "falcoctl"  # falcoctl driver, Falco >= 0.37


class ImageGeneration(enum.StrEnum):
    """How Falco's image gets its driver (docs/falco-versions.md, "The Falco container")."""

    BASH_ENTRYPOINT = "bash-entrypoint"  # <= 0.36: the entrypoint runs falco-driver-loader
    FALCOCTL_ENTRYPOINT = "falcoctl-entrypoint"  # 0.37-0.39: it runs falcoctl, as told by
    #                                             FALCO_DRIVER_LOADER_OPTIONS
    LOADER_IMAGE = "loader-image"  # >= 0.40: no loader inside; falco-driver-loader runs first


# (major, minor, patch or None for "any patch") -> driver version.
_DRIVER_VERSIONS: tuple[tuple[tuple[int, int, int | None], str], ...] = (
    ((0, 32, 1), "2.0.0+driver"),
    ((0, 32, 2), "2.0.0+driver"),
    ((0, 33, None), "3.0.1+driver"),
    ((0, 34, None), "4.0.0+driver"),
    ((0, 35, None), "5.0.1+driver"),
    ((0, 36, None), "6.0.1+driver"),
    ((0, 37, None), "7.0.0+driver"),
    ((0, 38, 0), "7.2.0+driver"),
    ((0, 38, 1), "7.2.0+driver"),
    ((0, 38, 2), "7.2.1+driver"),
    ((0, 39, None), "7.3.0+driver"),
    ((0, 40, None), "8.0.0+driver"),
    ((0, 41, None), "8.1.0+driver"),
    ((0, 42, None), "9.0.0+driver"),
    ((0, 43, None), "9.1.0+driver"),
    ((0, 44, None), "10.2.0+driver"),
)


def known_driver_version(version: FalcoVersion) -> str | None:
    for (major, minor, patch), driver in _DRIVER_VERSIONS:
        if (version.major, version.minor) == (major, minor) and patch in (None, version.patch):
            return driver
    return None


def driver_version(falco: str, override: str | None = None) -> str:
    """The driver version a Falco release loads, or the manifest's ``driverVersion``."""
    if override:
        return override
    found = known_driver_version(FalcoVersion.parse(falco))
    if found is None:
        raise UnknownDriverVersion(
            f"Falco {falco} has no known driver version: set falco.driverVersion"
        )
    return found


def loader_kind(version: FalcoVersion) -> LoaderKind:
    return LoaderKind.FALCOCTL if version >= FalcoVersion(0, 37, 0) else LoaderKind.BASH


def image_generation(version: FalcoVersion) -> ImageGeneration:
    if version >= FalcoVersion(0, 40, 0):
        return ImageGeneration.LOADER_IMAGE
    if version >= FalcoVersion(0, 37, 0):
        return ImageGeneration.FALCOCTL_ENTRYPOINT
    return ImageGeneration.BASH_ENTRYPOINT


def default_engine(version: FalcoVersion) -> str:
    """``engine.kind`` of the image's own falco.yaml: kmod up to 0.37, modern_ebpf after."""
    return "modern_ebpf" if version >= FalcoVersion(0, 38, 0) else "kmod"


# Legacy eBPF: deprecated in Falco 0.43, removed in 0.44 (its loader takes only auto, kmod
# and modern_ebpf), and driver 10.0 has no probe (no driver/bpf in the libs tree).
FIRST_DRIVER_WITHOUT_PROBE = 10


def supports_legacy_ebpf(version: FalcoVersion) -> bool:
    return version < FalcoVersion(0, 44, 0)


def legacy_ebpf_deprecated(version: FalcoVersion) -> bool:
    return FalcoVersion(0, 43, 0) <= version < FalcoVersion(0, 44, 0)


def driver_has_probe(driver_version: str) -> bool:
    """Whether a driver version still ships the legacy probe (major < 10; others: yes)."""
    major = re.match(r"^v?(\d+)\.", driver_version)
    return major is None or int(major[1]) < FIRST_DRIVER_WITHOUT_PROBE


def uses_arch_folder(version: FalcoVersion) -> bool:
    """Falco < 0.32 requested ``<driverVersion>/<file>`` with no ``<arch>/`` folder."""
    return version >= FalcoVersion(0, 32, 0)


def supports_modern_ebpf(version: FalcoVersion) -> bool:
    return version >= FalcoVersion(0, 35, 0)
