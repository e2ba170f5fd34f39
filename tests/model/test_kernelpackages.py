"""A kernel package's version as the ``uname -v`` it boots with, and dpkg's status stanzas.

The point of the dpkg source: the names Falco's loaders derive from the version we make
up (no date) are those they derive from the real ``uname -v`` (facts_cases.HOSTS), for
every Falco release ``reconciler facts`` shows.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.commands import facts
from reconciler.model import kernelnames, kernelpackages
from reconciler.model.kernelpackages import Package
from tests.model.facts_cases import HOSTS

DEBIAN_TEAM = "Debian Kernel Team <debian-kernel@lists.debian.org>"
UBUNTU_TEAM = "Ubuntu Kernel Team <kernel-team@lists.ubuntu.com>"


@pytest.mark.parametrize(
    ("version", "maintainer", "flags", "uname_v"),
    [
        ("6.1.192-3", DEBIAN_TEAM, "SMP PREEMPT_DYNAMIC",
         "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3"),
        ("5.10.113-1", DEBIAN_TEAM, "SMP", "#1 SMP Debian 5.10.113-1"),
        ("5.10.136-1~deb10u3", DEBIAN_TEAM, "SMP", "#1 SMP Debian 5.10.136-1~deb10u3"),
        ("5.15.0-86.96", UBUNTU_TEAM, "SMP", "#96-Ubuntu SMP"),
        ("5.15.0-86.96~20.04.1", UBUNTU_TEAM, "SMP", "#96~20.04.1-Ubuntu SMP"),
        ("6.2.0-26.26~22.04.1", UBUNTU_TEAM, "SMP PREEMPT_DYNAMIC",
         "#26~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC"),
        ("6.5.0-1", "Someone <me@example.org>", "SMP", None),  # make bindeb-pkg
        ("6.1.192-3", "", "SMP", None),
    ],
)
def test_package_version_gives_uname_v_without_date(
    version: str, maintainer: str, flags: str, uname_v: str | None
) -> None:
    package = Package("linux-image-x", version, "install ok installed", maintainer)
    assert kernelpackages.uname_version(package, flags) == uname_v


# (host in facts_cases.HOSTS, the package version its kernel was installed from)
PACKAGED = [
    ("debian10", "4.19.282-1", DEBIAN_TEAM, "SMP"),
    ("debian11-cloud", "5.10.113-1", DEBIAN_TEAM, "SMP"),
    ("debian11-bpo", "5.10.136-1~deb10u3", DEBIAN_TEAM, "SMP"),
    ("debian12-cloud", "6.1.76-1", DEBIAN_TEAM, "SMP PREEMPT_DYNAMIC"),
    ("debian12-rt", "6.1.76-1", DEBIAN_TEAM, "SMP PREEMPT_RT"),
    ("debian12-arm64", "6.1.76-1", DEBIAN_TEAM, "SMP"),
    ("ubuntu-generic", "5.15.0-46.49", UBUNTU_TEAM, "SMP"),
    ("ubuntu-hwe", "6.2.0-26.26~22.04.1", UBUNTU_TEAM, "SMP PREEMPT_DYNAMIC"),
    ("ubuntu-aws-hwe", "5.4.0-1103.111~18.04.1", UBUNTU_TEAM, "SMP"),
    ("ubuntu-gke", "5.15.0-1042.47", UBUNTU_TEAM, "SMP"),
]


@pytest.mark.parametrize(("host", "version", "maintainer", "flags"), PACKAGED,
                         ids=[p[0] for p in PACKAGED])
def test_names_from_the_package_are_the_names_from_the_real_uname_v(
    host: str, version: str, maintainer: str, flags: str
) -> None:
    real = HOSTS[host].facts()
    made = kernelpackages.uname_version(Package("p", version, "install ok installed",
                                                maintainer), flags)
    assert made is not None
    assert real.kernel_version.startswith(made)  # the real one only adds the date
    from_package = replace(real, kernel_version=made)
    for falco in facts.default_versions():
        assert kernelnames.name(from_package, falco) == kernelnames.name(real, falco), falco


@pytest.mark.parametrize(
    ("lines", "flags"),
    [
        (["CONFIG_SMP=y", "CONFIG_PREEMPT_VOLUNTARY=y", "CONFIG_PREEMPT_BUILD=y",
          "CONFIG_PREEMPT_DYNAMIC=y"], "SMP PREEMPT_DYNAMIC"),
        (["CONFIG_SMP=y", "CONFIG_PREEMPT_RT=y", "CONFIG_PREEMPT_DYNAMIC=y"], "SMP PREEMPT_RT"),
        (["CONFIG_SMP=y", "CONFIG_PREEMPT=y"], "SMP PREEMPT"),
        (["CONFIG_SMP=y", "# CONFIG_PREEMPT is not set"], "SMP"),
        (["# CONFIG_SMP is not set"], ""),
        (None, "SMP"),
    ],
)
def test_build_flags_follow_the_kernel_config(lines: list[str] | None, flags: str) -> None:
    assert kernelpackages.uts_flags(lines) == flags


STATUS = """\
Package: base-files
Status: install ok installed
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy
 Package: linux-image-6.1.0-57-cloud-amd64

Package: linux-image-6.1.0-50-cloud-amd64
Status: deinstall ok config-files
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Version: 6.1.176-1

Package: linux-image-6.1.0-57-cloud-amd64
Status: install ok installed
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Version: 6.1.192-3
Conffiles:
 /etc/kernel/postinst.d/x 0123abcd

Package: linux-image-6.1.0-56-cloud-amd64-unsigned
status: install ok half-configured
Version: 6.1.192-2
"""


def test_status_stanzas_of_installed_wanted_packages() -> None:
    wanted = frozenset({*kernelpackages.image_packages("6.1.0-57-cloud-amd64"),
                        *kernelpackages.image_packages("6.1.0-50-cloud-amd64"),
                        *kernelpackages.image_packages("6.1.0-56-cloud-amd64")})
    got = kernelpackages.status_entries(STATUS.splitlines(keepends=True), wanted)
    assert set(got) == {"linux-image-6.1.0-57-cloud-amd64",
                        "linux-image-6.1.0-56-cloud-amd64-unsigned"}
    assert got["linux-image-6.1.0-57-cloud-amd64"] == Package(
        "linux-image-6.1.0-57-cloud-amd64", "6.1.192-3", "install ok installed", DEBIAN_TEAM)
    assert got["linux-image-6.1.0-56-cloud-amd64-unsigned"].version == "6.1.192-2"


def test_status_without_trailing_blank_line_and_without_status_field() -> None:
    text = "Package: linux-image-x\nVersion: 1.0-1\n\nPackage: linux-image-y\nStatus: install ok installed\nVersion: 2.0-1"  # noqa: E501 - one file, as written
    got = kernelpackages.status_entries(text.splitlines(), frozenset({"linux-image-x",
                                                                      "linux-image-y"}))
    assert set(got) == {"linux-image-y"}
