"""The names each Falco version's driver loader asks for, from the host's facts.

A prebuilt driver is found by name: ``falco_<target>_<kernelRelease>_<kernelVersion>``.
Falco up to 0.36 computes those parts in the bash ``scripts/falco-driver-loader``; from
0.37 falcoctl's ``pkg/driver/distro`` does. Both start from ``ID`` in os-release,
``uname -r`` and ``uname -v``, then a distro may rewrite a part. Those rewrites changed
from release to release, so each one below is a ``Rule`` that names the distro and the
Falco versions it applies to; its function's docstring says what it does and why.

Falco < 0.32 asked for the same names (only the URL lacked the ``<arch>/`` folder, which
is ``versions.uses_arch_folder``'s business), so its versions fall under the oldest rules.

Some hosts get no name at all from some loaders: no distro they know, an os-release key
they require, a kernel release they cannot parse. ``name`` then returns ``Unnamed`` with
the reason, and nothing is built for that version; ``kernel_id`` raises it as FactsError.

Sources: falco ``scripts/falco-driver-loader``, its CHANGELOG and the PRs that changed
it (#2178 ubuntu flavors, #2191 minikube: 0.33.0; #2318 bottlerocket: 0.34.0; #2377
debian, #2494 amazonlinux 2022/2023, #2537 talos: 0.35.0; #2635 ubuntu kernel version,
#2627 debian rt/cloud: 0.35.1); falcoctl ``pkg/driver/distro`` and ``pkg/driver/kernel``
(v0.7.1 in Falco 0.37.0; #427 generic kernel version in v0.7.2, Falco 0.37.1; v0.8.0 in
0.38.0/0.38.1, v0.9.0 in 0.38.2, v0.10.x in 0.39, v0.11.x in 0.40-0.42, v0.12.2 in 0.43,
v0.13.0 in 0.44, from falco's ``cmake/modules/falcoctl.cmake`` at each tag) and the
driverkit ``pkg/kernelrelease`` each of those falcoctl releases is built with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler.errors import FactsError
from reconciler.model.artifacts import KernelId, store_arch
from reconciler.model.distros import (
    FALCOCTL_REQUIRED_KEYS,
    MINIKUBE_VERSION,
    bash_distro,
    distro_id,
    falcoctl_distro,
)
from reconciler.model.host import HostFacts
from reconciler.model.kernelparts import (
    FIRST_FALCOCTL,
    Names,
    ParsedRelease,
    Unnamed,
    V,
    bash_kernel_version,
    default_kernel_version,
    default_release,
    driverkit_release,
    falcoctl_070_kernel_version,
    falcoctl_kernel_version,
)
from reconciler.model.versions import FalcoVersion

__all__ = [
    "BOUNDARIES",
    "FALCOCTL_REQUIRED_KEYS",
    "FIRST_FALCOCTL",
    "RULES",
    "Names",
    "ParsedRelease",
    "Rule",
    "Unnamed",
    "V",
    "amzn_2_only",
    "amzn_by_version",
    "bash_distro",
    "bash_kernel_version",
    "bottlerocket_version",
    "debian_falcoctl",
    "debian_release_arch_only",
    "debian_release_with_flavor",
    "default_kernel_version",
    "default_release",
    "distro_id",
    "driverkit_release",
    "falcoctl_070_kernel_version",
    "falcoctl_distro",
    "falcoctl_kernel_version",
    "flatcar_falcoctl",
    "flatcar_release",
    "kernel_id",
    "minikube_version",
    "name",
    "talos_version",
    "ubuntu_aws_or_generic",
    "ubuntu_falcoctl",
    "ubuntu_flavor",
    "ubuntu_flavor_with_suffix",
]

RuleFn = Callable[[HostFacts, Names], "Names | Unnamed"]


@dataclass(frozen=True)
class Rule:
    """A distro's rewrite, for Falco versions in ``[since, until)`` (None: open)."""

    distro: str  # os-release ID as the loader matches it; "*" for every distro
    since: FalcoVersion | None
    until: FalcoVersion | None
    apply: RuleFn

    def covers(self, distro: str, falco: FalcoVersion) -> bool:
        if self.distro not in ("*", distro):
            return False
        return (self.since is None or falco >= self.since) and (
            self.until is None or falco < self.until
        )


# -- ubuntu ------------------------------------------------------------------------------

_UBUNTU_FLAVOR = re.compile(r"-([a-zA-Z]+)(-.*)?$")


def ubuntu_aws_or_generic(facts: HostFacts, names: Names) -> Names:
    """Falco <= 0.32: ``ubuntu-aws`` when the release contains ``aws``, else ``ubuntu-generic``.

    So a GKE node (``5.4.0-1083-gke``) asked for ``ubuntu-generic``.
    """
    target = "ubuntu-aws" if "aws" in facts.kernel_release else "ubuntu-generic"
    return replace(names, target=target)


def ubuntu_flavor_with_suffix(facts: HostFacts, names: Names) -> Names:
    """Falco 0.33.0-0.35.0 (falco#2178): ``ubuntu-<flavor>`` from the release, suffix kept.

    ``5.15.0-1009-aws`` -> ``ubuntu-aws``; ``5.0.0-1028-aws-5.0`` -> ``ubuntu-aws-5.0``;
    a release with no letters after a dash -> ``ubuntu-generic``.
    """
    match = _UBUNTU_FLAVOR.search(facts.kernel_release)
    target = f"ubuntu-{match[1]}{match[2] or ''}" if match else "ubuntu-generic"
    return replace(names, target=target)


def ubuntu_flavor(facts: HostFacts, names: Names) -> Names:
    """Falco 0.35.1-0.36 (falco#2635): ``ubuntu-<flavor>`` without suffix, and HWE versions.

    ``5.0.0-1028-aws-5.0`` -> ``ubuntu-aws``. A ``uname -v`` like
    ``#26~22.04.1-Ubuntu SMP ...`` gives the kernel version ``26~22.04.1`` (the whole
    first word up to ``-``), so backported kernels get their own artifact.
    """
    match = _UBUNTU_FLAVOR.search(facts.kernel_release)
    target = f"ubuntu-{match[1]}" if match else "ubuntu-generic"
    version = names.version
    if re.match(r"^#[0-9]+~[^-]*-Ubuntu .*$", facts.kernel_version):
        version = re.sub(r"#([^-\\ ]*).*", r"\1", facts.kernel_version)
    return replace(names, target=target, version=version)


def ubuntu_falcoctl(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.37 (falcoctl ubuntu.go): flavor as in 0.35.1; version is the first word.

    The flavor is read from the part driverkit parses after ``X.Y[.Z]`` (none when it
    cannot parse the release). The version is the first word of ``uname -v`` without
    ``#`` and without a ``-Ubuntu`` suffix: ``#26~22.04.1-Ubuntu SMP ...`` -> ``26~22.04.1``;
    ``#49-Ubuntu SMP`` -> ``49``.
    """
    extra = driverkit_release(facts.kernel_release, names.falco).extra
    match = _UBUNTU_FLAVOR.search(extra)
    target = f"ubuntu-{match[1]}" if match else "ubuntu-generic"
    word = facts.kernel_version.lstrip("#").split(" ")[0]
    return replace(names, target=target, version=word.removesuffix("-Ubuntu"))


# -- amazon linux ------------------------------------------------------------------------

def amzn_2_only(facts: HostFacts, names: Names) -> Names:
    """Falco <= 0.34: ``VERSION_ID=2`` -> ``amazonlinux2``; anything else ``amazonlinux``.

    AL2022 and AL2023 hosts therefore asked for ``amazonlinux`` artifacts.
    """
    return replace(names, target="amazonlinux2" if facts.os_version_id == "2" else "amazonlinux")


def amzn_by_version(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.35 (falco#2494, falcoctl amzn.go): 2, 2022, 2023 get their own target."""
    known = {"2": "amazonlinux2", "2022": "amazonlinux2022", "2023": "amazonlinux2023"}
    return replace(names, target=known.get(facts.os_version_id, "amazonlinux"))


# -- debian ------------------------------------------------------------------------------

_DEBIAN_UPSTREAM = re.compile(r"([0-9]+\.[0-9]+\.[0-9]+-[0-9]+)")


def _debian_rebuilt(facts: HostFacts, arch_pattern: str) -> str | None:
    """The release rebuilt from ``uname -v``'s package version, or None when it has none."""
    upstream = _DEBIAN_UPSTREAM.search(facts.kernel_version)
    if not upstream:
        return None
    arch = re.search(arch_pattern, facts.kernel_release)
    suffix = "-" + "".join(g or "" for g in arch.groups()) if arch else ""
    return upstream[1] + suffix


def debian_release_arch_only(facts: HostFacts, names: Names) -> Names:
    """Falco 0.35.0 (falco#2377): Debian's release is rebuilt from ``uname -v``.

    ``uname -r`` names the ABI package (``4.19.0-24-amd64``), not the kernel
    (``#1 SMP Debian 4.19.282-1 (...)``), so the loader asks for ``4.19.282-1-amd64``.
    Only the architecture suffix was carried over: a cloud kernel
    (``5.10.0-14-cloud-amd64``) became ``5.10.113-1-amd64`` (fixed in 0.35.1, falco#2627).
    """
    rebuilt = _debian_rebuilt(facts, r"-(amd64|arm64)")
    return replace(names, release=rebuilt) if rebuilt else names


def debian_release_with_flavor(facts: HostFacts, names: Names) -> Names:
    """Falco 0.35.1-0.36 (falco#2627): as in 0.35.0, keeping the ``rt-``/``cloud-`` flavor.

    ``5.10.0-14-cloud-amd64`` + ``#1 SMP Debian 5.10.113-1 (...)`` -> ``5.10.113-1-cloud-amd64``.
    """
    rebuilt = _debian_rebuilt(facts, r"-?(rt-|cloud-|)(amd64|arm64)")
    return replace(names, release=rebuilt) if rebuilt else names


def debian_falcoctl(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.37 (falcoctl debian.go): the 0.35.1 release, and kernel version ``1``.

    The flavor and arch are looked for in the part driverkit parsed after ``X.Y.Z``, and
    the rebuilt release is parsed again (with a fixed kernel version of ``1``); without a
    package version in ``uname -v`` it keeps the generic names.
    """
    upstream = _DEBIAN_UPSTREAM.search(facts.kernel_version)
    if not upstream:
        return names
    extra = driverkit_release(facts.kernel_release, names.falco).extra
    arch = re.search(r"-?(rt-|cloud-|)(amd64|arm64)", extra)
    rebuilt = upstream[1] + (f"-{arch[1]}{arch[2]}" if arch else "")
    return replace(names, release=str(driverkit_release(rebuilt, names.falco)), version="1")


# -- container OSes ----------------------------------------------------------------------

def flatcar_release(facts: HostFacts, names: Names) -> Names | Unnamed:
    """Falco 0.32.1-0.36 (falco 0.32.1, 85f91a3): the release is ``VERSION_ID`` (3510.2.5).

    Prebuilt Flatcar drivers are keyed by OS release, not by ``uname -r``. Before 0.32.1
    the loader had no Flatcar case and named ``uname -r``.
    """
    if not facts.os_version_id:
        return Unnamed(f"Flatcar's os-release has no VERSION_ID: Falco {names.falco}'s loader "
                       "would request a driver with an empty kernel release")
    return replace(names, release=facts.os_version_id)


# blang/semver's Parse, which falcoctl's flatcar.go calls through MustParse.
_SEMVER_NUMBER = r"(?:0|[1-9][0-9]*)"
_SEMVER = re.compile(
    rf"{_SEMVER_NUMBER}\.{_SEMVER_NUMBER}\.{_SEMVER_NUMBER}"
    r"(?:-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z",
    re.ASCII,
)


def flatcar_falcoctl(facts: HostFacts, names: Names) -> Names | Unnamed:
    """Falco >= 0.37 (falcoctl flatcar.go): the release is ``VERSION_ID`` as a semver.

    falcoctl requires ``VERSION_ID`` (see ``falcoctl_distro``) and parses it with a
    must-parse semver call: a Flatcar version that is no ``X.Y.Z`` semver crashes it
    before any download.
    """
    if not _SEMVER.match(facts.os_version_id):
        return Unnamed(f"Flatcar's VERSION_ID {facts.os_version_id!r} is not a semver "
                       f"X.Y.Z: the falcoctl of Falco {names.falco} panics parsing it and "
                       "downloads nothing")
    return replace(names, release=facts.os_version_id)




def minikube_version(facts: HostFacts, names: Names) -> Names | Unnamed:
    """Falco >= 0.33 (falco#2191): kernel version ``1_<minikube version>`` from etc/VERSION.

    ``v1.26.0-1655407986-14197`` -> ``1_1.26.0``: minikube ISOs share kernels across
    releases, so the prebuilt drivers are keyed by minikube's own version.
    """
    found = MINIKUBE_VERSION.search(facts.minikube_version or "")
    if not found:
        return Unnamed(f"etc/VERSION marks a minikube host but holds no version like 1.26.0: "
                       f"Falco {names.falco}'s loader stops there")
    return replace(names, version=f"1_{found[1]}")


def bottlerocket_version(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.34 (falco#2318): kernel version ``1_<VERSION_ID>-<variant>``.

    The variant is the first dash part of ``VARIANT_ID`` (``aws-k8s-1.24`` -> ``aws``), so
    ``1_1.11.1-aws``: kernels are built per Bottlerocket release and variant.
    """
    variant = facts.os_field("VARIANT_ID").split("-", 1)[0]
    return replace(names, version=f"1_{facts.os_version_id}-{variant}")


def talos_version(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.35 (falco#2537): kernel version ``1_<VERSION_ID>`` (``1_v1.4.5``)."""
    return replace(names, version=f"1_{facts.os_version_id}")


RULES: tuple[Rule, ...] = (
    Rule("ubuntu", None, V(0, 33, 0), ubuntu_aws_or_generic),
    Rule("ubuntu", V(0, 33, 0), V(0, 35, 1), ubuntu_flavor_with_suffix),
    Rule("ubuntu", V(0, 35, 1), FIRST_FALCOCTL, ubuntu_flavor),
    Rule("ubuntu", FIRST_FALCOCTL, None, ubuntu_falcoctl),
    Rule("amzn", None, V(0, 35, 0), amzn_2_only),
    Rule("amzn", V(0, 35, 0), None, amzn_by_version),
    Rule("debian", V(0, 35, 0), V(0, 35, 1), debian_release_arch_only),
    Rule("debian", V(0, 35, 1), FIRST_FALCOCTL, debian_release_with_flavor),
    Rule("debian", FIRST_FALCOCTL, None, debian_falcoctl),
    Rule("flatcar", V(0, 32, 1), FIRST_FALCOCTL, flatcar_release),
    Rule("flatcar", FIRST_FALCOCTL, None, flatcar_falcoctl),
    Rule("minikube", V(0, 33, 0), None, minikube_version),
    Rule("bottlerocket", V(0, 34, 0), None, bottlerocket_version),
    Rule("talos", V(0, 35, 0), None, talos_version),
)

# Releases where a name changes outside RULES: the kernel version (0.37.1), which distro
# the loader sees (0.33.0, 0.34.0, 0.38.0) and driverkit's release parser (0.38.0, 0.39.0,
# 0.44.0).
_OTHER_CHANGES = frozenset({V(0, 33, 0), V(0, 34, 0), V(0, 37, 1), V(0, 38, 0), V(0, 39, 0),
                            V(0, 44, 0)})

# The versions where some naming rule starts or stops.
BOUNDARIES: tuple[FalcoVersion, ...] = tuple(
    sorted({v for r in RULES for v in (r.since, r.until) if v is not None} | _OTHER_CHANGES)
)


def _unusable(part: str, value: str, facts: HostFacts, falco: FalcoVersion) -> Unnamed:
    if part == "kernel release" and falco >= FIRST_FALCOCTL and not value:
        return Unnamed(
            f"the falcoctl of Falco {falco} cannot parse the kernel release "
            f"{facts.kernel_release!r} and would request a driver with an empty kernel "
            "release (falcosecurity/falco#3278)"
        )
    return Unnamed(f"Falco {falco}'s loader would request an unusable {part} {value!r}")


def name(facts: HostFacts, falco: FalcoVersion) -> KernelId | Unnamed:
    """The kernel as the loader shipped with ``falco`` names it, or why it names none.

    The architecture is in store spelling; one this project cannot store is a FactsError.
    """
    try:
        arch = store_arch(facts.machine)
    except ValueError as exc:
        raise FactsError(f"{exc} (uname -m of this host)") from None
    distro = distro_id(facts, falco)
    if isinstance(distro, Unnamed):
        return distro
    names: Names | Unnamed = Names(
        target=distro.lower(),
        release=default_release(facts.kernel_release, falco),
        version=default_kernel_version(facts.kernel_version, falco),
        falco=falco,
    )
    for rule in RULES:
        if isinstance(names, Unnamed):
            return names
        if rule.covers(distro, falco):
            names = rule.apply(facts, names)
    if isinstance(names, Unnamed):
        return names
    for part, value in (("target", names.target), ("kernel release", names.release),
                        ("kernel version", names.version)):
        if not value or "/" in value:
            return _unusable(part, value, facts, falco)
    return KernelId(names.target, names.release, names.version, arch)


def kernel_id(facts: HostFacts, falco: FalcoVersion) -> KernelId:
    """As ``name``, for callers that need a name: an ``Unnamed`` is a FactsError."""
    found = name(facts, falco)
    if isinstance(found, Unnamed):
        raise FactsError(found.reason)
    return found
