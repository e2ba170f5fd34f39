"""Falco releases: which driver version each one loads, which loader it ships, and which
driver identity (API and schema version) each driver version stands for.

The tables are docs/falco-versions.md's. Up to 0.36 Falco's image runs the bash
``falco-driver-loader``; from 0.37 it runs falcoctl, which reads other variables.

A driver version names a falcosecurity/libs tag, but what Falco's libscap checks when it
opens a driver is the driver's API and schema version: the major must be the one it was
built against, and the minor.patch at least it (a newer driver of the same major only
adds). ``identity_problem`` applies that rule to what a source tree or a built file
carries, so a driver published under a version always is what that version says.
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


# Every driver release falcosecurity/libs has tagged (``<x.y.z>+driver``; release
# candidates as ``-rcN+driver``), up to the newest this table knows. A version in that
# namespace at or below the newest which is not here was never released, so no source can
# have it; a newer one may be a release made after this table and is let through.
DRIVER_RELEASES: tuple[str, ...] = (
    "2.0.0", "3.0.0", "3.0.1", "4.0.0", "4.0.1", "5.0.0", "5.0.1", "5.1.0", "6.0.0",
    "6.0.1", "7.0.0", "7.1.0", "7.2.0", "7.2.1", "7.3.0", "8.0.0", "8.1.0", "9.0.0",
    "9.1.0", "10.0.0", "10.1.0", "10.2.0",
)
_RELEASED = {tuple(int(p) for p in v.split(".")): v for v in DRIVER_RELEASES}
_DRIVER_TAG = re.compile(r"(\d+)\.(\d+)\.(\d+)(-rc\d+)?(\+driver)?")


def driver_release_problem(value: str) -> str | None:
    """Why ``value`` names a driver release no source can have, with the releases nearest
    to it; None for a release, a newer version than this table knows, or a name outside
    the release namespace (a commit, ``master``, a private build's own version)."""
    found = _DRIVER_TAG.fullmatch(value)
    if found is None:
        return None
    number = (int(found[1]), int(found[2]), int(found[3]))
    if found[5] is None:
        if number in _RELEASED:
            return (f"{value!r} is not a driver release: falcosecurity/libs tags driver "
                    f"releases with +driver; did you mean '{value}+driver'?")
        return None
    if number in _RELEASED or number > max(_RELEASED):
        return None
    below = [v for v in _RELEASED if v < number]
    above = [v for v in _RELEASED if v > number]
    near = [_RELEASED[max(below)]] if below else []
    near += [_RELEASED[min(above)]] if above else []
    nearest = min((v for v in _RELEASED if v[0] == number[0]),
                  key=lambda v: abs(v[1] - number[1]) * 1000 + abs(v[2] - number[2]),
                  default=max(below) if below else min(above))
    return (f"{value!r} is not a driver release (the releases nearest it are "
            f"{' and '.join(n + '+driver' for n in near)}); did you mean "
            f"'{_RELEASED[nearest]}+driver'?")


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


@dataclass(frozen=True, order=True)
class SemVer:
    """A ``major.minor.patch`` triple, as driver/API_VERSION and .modinfo write it."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = re.fullmatch(r"\s*(\d+)\.(\d+)\.(\d+)\s*", text)
        if not match:
            raise ValueError(f"{text!r} is not a version: expected major.minor.patch")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def satisfies(self, required: SemVer) -> bool:
        """libscap's rule: the same major, and a minor.patch no lower than required."""
        return self.major == required.major and (self.minor, self.patch) >= (
            required.minor, required.patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class DriverIdentity:
    """What a driver says it is to libscap: its API and schema versions."""

    api: SemVer
    schema: SemVer

    @classmethod
    def parse(cls, api: str, schema: str) -> DriverIdentity:
        return cls(SemVer.parse(api), SemVer.parse(schema))

    def satisfies(self, required: DriverIdentity) -> bool:
        return self.api.satisfies(required.api) and self.schema.satisfies(required.schema)

    def __str__(self) -> str:
        return f"API {self.api} / schema {self.schema}"


# What the Falco releases of each driver version require (driver/API_VERSION and
# driver/SCHEMA_VERSION at that libs tag).
_REQUIRED_IDENTITY: dict[str, DriverIdentity] = {
    version: DriverIdentity.parse(api, schema) for version, api, schema in (
        ("2.0.0+driver", "1.0.0", "2.0.0"),
        ("3.0.1+driver", "2.0.0", "2.1.0"),
        ("4.0.0+driver", "3.0.0", "2.2.0"),
        ("5.0.1+driver", "4.0.1", "2.4.1"),
        ("6.0.1+driver", "5.0.0", "2.10.0"),
        ("7.0.0+driver", "8.0.1", "2.14.0"),
        ("7.2.0+driver", "8.0.3", "2.20.1"),
        ("7.2.1+driver", "8.0.3", "2.20.1"),
        ("7.3.0+driver", "8.0.3", "2.22.1"),
        ("8.0.0+driver", "8.0.3", "3.5.0"),
        ("8.1.0+driver", "8.0.3", "3.6.1"),
        ("9.0.0+driver", "8.0.4", "4.0.1"),
        ("9.1.0+driver", "8.0.4", "4.1.0"),
        ("10.2.0+driver", "10.1.0", "4.5.1"),
    )
}


def required_identity(driver_version: str) -> DriverIdentity | None:
    """The identity a known driver version requires; None for one we know nothing of
    (a private or made-up version), which is then not checked."""
    return _REQUIRED_IDENTITY.get(driver_version)


def identity_problem(driver_version: str, found: DriverIdentity) -> str | None:
    """Why a driver of identity ``found`` cannot be ``driver_version``, or None when it
    fits (or the version is not in the table)."""
    required = required_identity(driver_version)
    if required is None or found.satisfies(required):
        return None
    return (
        f"driver version {driver_version} requires {required} (the same majors, "
        f"minor.patch at least these), but the driver has {found}"
    )
