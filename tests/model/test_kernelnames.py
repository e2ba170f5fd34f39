"""The names each Falco version's loader asks for, checked on real hosts' uname and os-release.

Every rule is checked at versions on both sides of the release that brought it
(facts_cases.EXPECTED), plus the refusals: hosts no loader can name.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.errors import FactsError
from reconciler.model import kernelnames
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.versions import FalcoVersion
from tests.model.facts_cases import EXPECTED, HOSTS, Host

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


def test_every_host_is_checked_and_every_rule_is_exercised() -> None:
    """Each host has an expectation, and each rule changes some expected name."""
    assert {host for host, *_ in EXPECTED} == set(HOSTS)
    covered = {
        rule.apply.__name__
        for host, falcos, *_ in EXPECTED
        for falco in falcos
        for rule in kernelnames.RULES
        if rule.covers(kernelnames.distro_id(HOSTS[host].facts(), FalcoVersion.parse(falco)),
                       FalcoVersion.parse(falco))
    }
    assert covered == {rule.apply.__name__ for rule in kernelnames.RULES}


def test_boundaries_are_the_releases_where_rules_change() -> None:
    assert [str(v) for v in kernelnames.BOUNDARIES] == [
        "0.33.0", "0.34.0", "0.35.0", "0.35.1", "0.37.0", "0.37.1", "0.39.0",
    ]


def test_design_example_gives_the_documented_url() -> None:
    """docs/falco-versions.md: 0.32.2 on 5.10.0-14-cloud-amd64 asks for
    .../x86_64/falco_debian_..._1.ko."""
    kernel = kernelnames.kernel_id(HOSTS["debian11-cloud"].facts(), FalcoVersion(0, 32, 2))
    key = ArtifactKey.for_kernel(kernel, "2.0.0+driver", DriverKind.KMOD)
    assert key.url_path() == "/2.0.0%2Bdriver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"


@pytest.mark.parametrize("falco", ["0.37.0", "0.38.2"])
def test_falcoctl_037_038_refuses_a_cos_release_it_cannot_parse(falco: str) -> None:
    with pytest.raises(FactsError, match=r"5\.15\.133\+.*falco#3278"):
        kernelnames.kernel_id(HOSTS["cos"].facts(), FalcoVersion.parse(falco))


def test_bash_loader_matches_the_id_as_written_falcoctl_lowercases_it() -> None:
    """`ID=Ubuntu` misses the bash loader's `ubuntu` case but not falcoctl's."""
    host = HOSTS["ubuntu-gke"]
    shouting = replace(host, os_release=host.os_release.replace("ID=ubuntu", "ID=Ubuntu")
                       if host.os_release else None).facts()
    bash = kernelnames.kernel_id(shouting, FalcoVersion(0, 36, 2))
    falcoctl = kernelnames.kernel_id(shouting, FalcoVersion(0, 37, 1))
    assert (bash.target, falcoctl.target) == ("ubuntu", "ubuntu-gke")


def test_etc_version_without_a_version_stops_bash_but_not_falcoctl() -> None:
    """The bash loader exits on an unreadable minikube version; falcoctl ignores the file."""
    host = replace(HOSTS["minikube"], minikube_version="garbage\n").facts()
    with pytest.raises(FactsError, match="etc/VERSION"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))
    assert kernelnames.kernel_id(host, FalcoVersion(0, 37, 1)).target == "buildroot"


def test_falcoctl_believes_etc_version_even_without_os_release() -> None:
    host = replace(HOSTS["minikube"], os_release=None).facts()
    assert kernelnames.kernel_id(host, FalcoVersion(0, 38, 0)).kernel_version == "1_1.26.0"
    with pytest.raises(FactsError, match="cannot name the distro"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))


@pytest.mark.parametrize("falco", ["0.32.2", "0.36.2", "0.37.1"])
def test_host_without_any_release_file_cannot_be_named(falco: str) -> None:
    host = Host("5.10.0", "#1 SMP", None).facts()
    with pytest.raises(FactsError, match="os-release"):
        kernelnames.kernel_id(host, FalcoVersion.parse(falco))


def test_os_release_without_id_is_refused() -> None:
    host = Host("5.10.0", "#1 SMP", 'NAME="Nameless"\n').facts()
    with pytest.raises(FactsError, match="no ID"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))


def test_flatcar_without_version_id_is_refused() -> None:
    host = Host("5.15.119-flatcar", "#1 SMP", "ID=flatcar\n").facts()
    with pytest.raises(FactsError, match="VERSION_ID"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))


def test_unsupported_architecture_is_a_facts_error() -> None:
    host = replace(HOSTS["debian12"], machine="armv7l").facts()
    with pytest.raises(FactsError, match="armv7l"):
        kernelnames.kernel_id(host, FalcoVersion(0, 36, 2))


def test_bottlerocket_without_variant_keeps_the_dash_like_the_loaders() -> None:
    text = "ID=bottlerocket\nVERSION_ID=1.20.1\n"
    host = Host("6.1.90", "#1 SMP PREEMPT_DYNAMIC", text).facts()
    assert kernelnames.kernel_id(host, FalcoVersion(0, 37, 0)).kernel_version == "1_1.20.1-"


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
