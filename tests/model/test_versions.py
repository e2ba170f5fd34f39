"""model.versions: which driver versions were ever released (a version no source can have
is refused with the nearest releases); driver identity: libscap's rule over API and schema
versions, the table of what each driver version requires, and what a driver file says it
is."""

from __future__ import annotations

import pytest

from reconciler.model import driverfile, versions
from reconciler.model.artifacts import DriverKind
from reconciler.model.versions import DriverIdentity, SemVer
from tests.support.elf import make_elf, module_bytes, pack_version, probe_identity_sections


@pytest.mark.parametrize("value", [
    "2.0.0+driver", "8.0.0+driver", "10.2.0+driver", "5.1.0+driver",
    "9.1.0-rc1+driver",     # a release candidate of a release
    "11.0.0+driver",        # newer than the table: a release made after it
    "0.25.4",               # a libs userspace tag: not in the driver namespace
    "1.2.3-mycorp",         # a private build's own version
])
def test_released_newer_and_private_versions_pass(value: str) -> None:
    assert versions.driver_release_problem(value) is None


def test_a_release_number_without_plus_driver_suggests_the_tag() -> None:
    assert versions.driver_release_problem("8.0.0") == (
        "'8.0.0' is not a driver release: falcosecurity/libs tags driver releases with "
        "+driver; did you mean '8.0.0+driver'?")


def test_an_unreleased_version_names_its_neighbours_and_the_nearest() -> None:
    assert versions.driver_release_problem("8.0.1+driver") == (
        "'8.0.1+driver' is not a driver release (the releases nearest it are 8.0.0+driver "
        "and 8.1.0+driver); did you mean '8.0.0+driver'?")
    problem = versions.driver_release_problem("1.0.0+driver")
    assert problem is not None and "did you mean '2.0.0+driver'?" in problem


def test_every_version_falco_maps_to_was_released() -> None:
    for falco in ("0.32.2", "0.33.0", "0.38.2", "0.40.0", "0.44.1"):
        assert versions.driver_release_problem(versions.driver_version(falco)) is None


@pytest.mark.parametrize(("have", "required", "fits"), [
    ("8.0.3", "8.0.3", True),
    ("8.0.4", "8.0.3", True),  # a newer patch only adds
    ("8.1.0", "8.0.3", True),  # a newer minor only adds, whatever its patch
    ("8.0.2", "8.0.3", False),
    ("9.0.0", "8.0.3", False),  # another major is another API
    ("7.9.9", "8.0.3", False),
])
def test_the_source_major_must_equal_and_minor_patch_be_at_least(
    have: str, required: str, fits: bool,
) -> None:
    assert SemVer.parse(have).satisfies(SemVer.parse(required)) is fits


@pytest.mark.parametrize(("version", "api", "schema"), [
    ("2.0.0+driver", "1.0.0", "2.0.0"),
    ("7.2.1+driver", "8.0.3", "2.20.1"),
    ("8.0.0+driver", "8.0.3", "3.5.0"),
    ("9.1.0+driver", "8.0.4", "4.1.0"),
    ("10.2.0+driver", "10.1.0", "4.5.1"),
])
def test_known_driver_versions_require_their_libs_tag_identity(
    version: str, api: str, schema: str,
) -> None:
    assert versions.required_identity(version) == DriverIdentity.parse(api, schema)


def test_a_version_not_in_the_table_is_not_checked() -> None:
    assert versions.required_identity("0.1.1-dkms") is None
    assert versions.identity_problem("0.1.1-dkms", DriverIdentity.parse("1.0.0", "1.0.0")) is None


def test_a_misfit_names_the_version_what_it_requires_and_what_the_driver_has() -> None:
    assert versions.identity_problem("2.0.0+driver", DriverIdentity.parse("1.0.0", "1.0.0")) == (
        "driver version 2.0.0+driver requires API 1.0.0 / schema 2.0.0 (the same majors, "
        "minor.patch at least these), but the driver has API 1.0.0 / schema 1.0.0")
    # the sid package's 8.0.4 / 4.1.0 is what 9.1.0+driver needs, but not 9.0.0's 4.0.1+
    assert versions.identity_problem("9.1.0+driver", DriverIdentity.parse("8.0.4", "4.1.0")) is None
    assert versions.identity_problem("9.0.0+driver", DriverIdentity.parse("8.0.4", "4.1.0")) is None
    assert versions.identity_problem("8.0.0+driver", DriverIdentity.parse("8.0.4", "4.1.0"))


def test_a_module_says_its_identity_in_modinfo() -> None:
    info = driverfile.read_elf(module_bytes("6.1.0-1-cloud-amd64", "8.0.3", "3.5.0"))
    assert driverfile.identity(info, DriverKind.KMOD) == DriverIdentity.parse("8.0.3", "3.5.0")
    bare = driverfile.read_elf(module_bytes("6.1.0-1-cloud-amd64"))
    assert driverfile.identity(bare, DriverKind.KMOD) is None


@pytest.mark.parametrize("big_endian", [False, True])
def test_a_probe_says_its_identity_in_packed_sections(big_endian: bool) -> None:
    data = make_elf(driverfile.EM_BPF, probe_identity_sections("10.1.0", "4.5.1",
                    big_endian=big_endian), big_endian=big_endian)
    info = driverfile.read_elf(data)
    assert driverfile.identity(info, DriverKind.EBPF) == DriverIdentity.parse("10.1.0", "4.5.1")
    assert driverfile.unpack_version(pack_version("2.20.1")) == SemVer(2, 20, 1)


def test_only_the_sections_asked_for_are_read() -> None:
    data = make_elf(driverfile.EM_BPF, {"big": b"x" * 1000,
                                        **probe_identity_sections("8.0.3", "3.5.0")})
    reads: list[int] = []

    def read(offset: int, size: int) -> bytes:
        reads.append(size)
        return data[offset:offset + size]

    info = driverfile.read_elf_from(read, len(data), only=driverfile.identity_sections(
        DriverKind.EBPF))
    assert set(info.sections) == {"api_version", "schema_version"}
    assert 1000 not in reads
