"""The names each Falco version's loader asks for, checked on real hosts' uname and os-release.

Every rule is checked at versions on both sides of the release that brought it
(facts_cases.EXPECTED), and every gap, where a loader names nothing, with the exact reason
it gives (facts_cases.UNNAMED).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.errors import FactsError
from reconciler.model import kernelnames
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.versions import FalcoVersion
from tests.model.facts_cases import EXPECTED, HOSTS, UNNAMED, unnamed_reason

CASES = [
    pytest.param(host, falco, target, release, version, id=f"{host}@{falco}")
    for host, falcos, target, release, version in EXPECTED
    for falco in falcos
]


@pytest.mark.parametrize(("host", "falco", "target", "release", "version"), CASES)
def test_loader_names_the_kernel_as_expected(
    host: str, falco: str, target: str, release: str, version: str
) -> None:
    facts = HOSTS[host].facts()
    got = kernelnames.kernel_id(facts, FalcoVersion.parse(falco))
    arch = "aarch64" if facts.machine == "aarch64" else "x86_64"
    assert got == KernelId(target, release, version, arch)


UNNAMED_CASES = [
    pytest.param(host, falco, reason, id=f"{host}@{falco}")
    for host, falcos, reason in UNNAMED
    for falco in falcos
]


@pytest.mark.parametrize(("host", "falco", "reason"), UNNAMED_CASES)
def test_loader_names_nothing_and_says_why(host: str, falco: str, reason: str) -> None:
    facts = HOSTS[host].facts()
    expected = unnamed_reason(reason, falco)
    assert kernelnames.name(facts, FalcoVersion.parse(falco)) == kernelnames.Unnamed(expected)
    with pytest.raises(FactsError) as caught:
        kernelnames.kernel_id(facts, FalcoVersion.parse(falco))
    assert str(caught.value) == expected


def test_every_host_is_checked_and_every_rule_is_exercised() -> None:
    """Each host has an expectation, and each rule applies to some expected case."""
    assert {host for host, *_ in EXPECTED} | {host for host, *_ in UNNAMED} == set(HOSTS)
    covered = set()
    for host, falcos, *_ in (*EXPECTED, *UNNAMED):
        for falco in map(FalcoVersion.parse, falcos):
            distro = kernelnames.distro_id(HOSTS[host].facts(), falco)
            if isinstance(distro, str):
                covered |= {r.apply.__name__ for r in kernelnames.RULES if r.covers(distro, falco)}
    assert covered == {rule.apply.__name__ for rule in kernelnames.RULES}


def test_boundaries_are_the_releases_where_rules_change() -> None:
    assert [str(v) for v in kernelnames.BOUNDARIES] == [
        "0.32.1", "0.33.0", "0.34.0", "0.35.0", "0.35.1", "0.37.0", "0.37.1", "0.38.0",
        "0.39.0", "0.44.0",
    ]


def test_design_example_gives_the_documented_url() -> None:
    """docs/falco-versions.md: 0.32.2 on 5.10.0-14-cloud-amd64 asks for
    .../x86_64/falco_debian_..._1.ko."""
    kernel = kernelnames.kernel_id(HOSTS["debian11-cloud"].facts(), FalcoVersion(0, 32, 2))
    key = ArtifactKey.for_kernel(kernel, "2.0.0+driver", DriverKind.KMOD)
    assert key.url_path() == "/2.0.0%2Bdriver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"


def test_bash_loader_matches_the_id_as_written_falcoctl_lowercases_it() -> None:
    """`ID=Ubuntu` misses the bash loader's `ubuntu` case but not falcoctl's."""
    host = HOSTS["ubuntu-gke"]
    shouting = replace(host, os_release=host.os_release.replace("ID=ubuntu", "ID=Ubuntu")
                       if host.os_release else None).facts()
    bash = kernelnames.kernel_id(shouting, FalcoVersion(0, 36, 2))
    falcoctl = kernelnames.kernel_id(shouting, FalcoVersion(0, 37, 1))
    assert (bash.target, falcoctl.target) == ("ubuntu", "ubuntu-gke")


def test_falcoctl_ignores_an_etc_version_without_a_version() -> None:
    """The bash loader stops on it (see UNNAMED); falcoctl names the os-release ID."""
    host = HOSTS["minikube-garbage"].facts()
    assert kernelnames.kernel_id(host, FalcoVersion(0, 37, 1)).target == "buildroot"


def test_unsupported_architecture_is_a_facts_error() -> None:
    host = replace(HOSTS["debian12"], machine="armv7l").facts()
    with pytest.raises(FactsError, match="armv7l"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))


@pytest.mark.parametrize(
    ("uname_v", "bash", "falcoctl_070", "falcoctl"),
    [
        ("#1 SMP Debian 5.10.113-1 (2022-04-29)", "1", "1", "1"),
        ("#49-Ubuntu SMP Thu Aug 4 18:03:25 UTC 2022", "49", "49-Ubuntu", "49"),
        ("#1-photon SMP Wed Aug 2 08:09:36 UTC 2023", "1", "1-photon", "1"),
        ("SMP PREEMPT no hash", "SMP PREEMPT no hash", "SMP", "SMP PREEMPT no hash"),
    ],
)
def test_kernel_version_number_per_loader(
    uname_v: str, bash: str, falcoctl_070: str, falcoctl: str
) -> None:
    assert kernelnames.bash_kernel_version(uname_v) == bash
    assert kernelnames.falcoctl_070_kernel_version(uname_v) == falcoctl_070
    assert kernelnames.falcoctl_kernel_version(uname_v) == falcoctl


@pytest.mark.parametrize(
    ("release", "falco", "rendered"),
    [
        # COS: a bare "+" parses from driverkit v0.20.3 (Falco 0.39).
        ("6.1.85+", "0.37.1", ""),
        ("6.1.85+", "0.38.2", ""),
        ("6.1.85+", "0.39.0", "6.1.85+"),
        # A zero-led part: driverkit v0.16 (Falco 0.37) knew no leading zeros.
        ("5.4.0-1.01", "0.37.1", ""),
        ("5.4.0-1.01", "0.38.0", "5.4.0-1.01"),
        # A build part the pattern sets apart is dropped.
        ("5.4.0+01", "0.37.1", "5.4.0"),
        # A major alone parses from driverkit v0.23 (Falco 0.44).
        ("7", "0.43.0", ""),
        ("7", "0.44.0", "7"),
        ("6.1.arch1-1", "0.37.0", "6.1.arch1-1"),
        ("5.10.0-0.deb10.17-amd64", "0.37.0", "5.10.0-0.deb10.17-amd64"),
        ("5.14.21-150500.55.39-default", "0.44.0", "5.14.21-150500.55.39-default"),
    ],
)
def test_falcoctl_names_the_release_as_driverkit_renders_it(
    release: str, falco: str, rendered: str
) -> None:
    got = kernelnames.driverkit_release(release, FalcoVersion.parse(falco))
    assert str(got) == rendered
    assert kernelnames.default_release(release, FalcoVersion.parse(falco)) == rendered
    assert kernelnames.default_release(release, FalcoVersion(0, 36, 2)) == release
