"""The names each Falco version's driver loader asks for, from the host's facts.

A prebuilt driver is found by name: ``falco_<target>_<kernelRelease>_<kernelVersion>``.
Falco up to 0.36 computes those parts in the bash ``scripts/falco-driver-loader``; from
0.37 falcoctl's ``pkg/driver/distro`` does. Both start from ``ID`` in os-release,
``uname -r`` and ``uname -v``, then a distro may rewrite a part. Those rewrites changed
from release to release, so each one below is a ``Rule`` that names the distro and the
Falco versions it applies to; its function's docstring says what it does and why.

Falco < 0.32 asked for the same names (only the URL lacked the ``<arch>/`` folder, which
is ``versions.uses_arch_folder``'s business), so its versions fall under the oldest rules.

Sources: falco ``scripts/falco-driver-loader``, its CHANGELOG and the PRs that changed
it (#2178 ubuntu flavors, #2191 minikube: 0.33.0; #2318 bottlerocket: 0.34.0; #2377
debian, #2494 amazonlinux 2022/2023, #2537 talos: 0.35.0; #2635 ubuntu kernel version,
#2627 debian rt/cloud: 0.35.1); falcoctl ``pkg/driver/distro`` and ``pkg/driver/kernel``
(v0.7.1 in Falco 0.37.0; #427 generic kernel version in v0.7.2, Falco 0.37.1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler.errors import FactsError
from reconciler.model import versions
from reconciler.model.artifacts import KernelId, store_arch
from reconciler.model.host import HostFacts
from reconciler.model.versions import FalcoVersion, LoaderKind


@dataclass(frozen=True)
class Names:
    """The three name parts while the rules rewrite them."""

    target: str
    release: str
    version: str


RuleFn = Callable[[HostFacts, Names], Names]


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


V = FalcoVersion
FIRST_FALCOCTL = V(0, 37, 0)


# -- kernel version: the number after '#' in `uname -v` ----------------------------------

def bash_kernel_version(uname_v: str) -> str:
    """Falco <= 0.36: ``sed 's/#\\([[:digit:]]\\+\\).*/\\1/'`` over ``uname -v``.

    ``#1 SMP Debian 5.10.113-1 (2022-04-29)`` -> ``1``. Like sed, text before the ``#`` is
    kept and a string without ``#<digits>`` passes through unchanged.
    """
    return re.sub(r"#(\d+).*", r"\1", uname_v, count=1)


def falcoctl_070_kernel_version(uname_v: str) -> str:
    """Falco 0.37.0 (falcoctl 0.7.0/0.7.1): the first word of ``uname -v`` without ``#``.

    ``#1 SMP PREEMPT_DYNAMIC ...`` -> ``1``, but ``#1-photon SMP`` -> ``1-photon``;
    falcoctl#427 (v0.7.2) went back to the bash loader's digits.
    """
    return uname_v.lstrip("#").split(" ")[0]


def falcoctl_kernel_version(uname_v: str) -> str:
    """Falco >= 0.37.1 (falcoctl >= 0.7.2): the digits of the first ``#<digits>``.

    Unlike sed nothing before the ``#`` is kept; without ``#<digits>`` the whole
    ``uname -v`` is used.
    """
    match = re.search(r"#(\d+)", uname_v)
    return match[1] if match else uname_v


def default_kernel_version(uname_v: str, falco: FalcoVersion) -> str:
    if falco < FIRST_FALCOCTL:
        return bash_kernel_version(uname_v)
    if falco < V(0, 37, 1):
        return falcoctl_070_kernel_version(uname_v)
    return falcoctl_kernel_version(uname_v)


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

    The first word of ``uname -v`` without ``#`` and without a ``-Ubuntu`` suffix:
    ``#26~22.04.1-Ubuntu SMP ...`` -> ``26~22.04.1``; ``#49-Ubuntu SMP`` -> ``49``.
    """
    extra = re.sub(r"^\d+\.\d+(\.\d+)?", "", facts.kernel_release)
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

    falcoctl re-parses the rebuilt release with a fixed kernel version of ``1``; without
    a package version in ``uname -v`` it keeps the generic names.
    """
    rebuilt = _debian_rebuilt(facts, r"-?(rt-|cloud-|)(amd64|arm64)")
    return replace(names, release=rebuilt, version="1") if rebuilt else names


# -- container OSes ----------------------------------------------------------------------

def flatcar_release(facts: HostFacts, names: Names) -> Names:
    """Every version: Flatcar's release is its OS version (``VERSION_ID``, e.g. 3510.2.5).

    Prebuilt Flatcar drivers are keyed by OS release, not by ``uname -r``.
    """
    if not facts.os_version_id:
        raise FactsError("Flatcar's os-release has no VERSION_ID, which the loader names it by")
    return replace(names, release=facts.os_version_id)


_MINIKUBE_VERSION = re.compile(r"([0-9]+(\.[0-9]+){2})")


def minikube_version(facts: HostFacts, names: Names) -> Names:
    """Falco >= 0.33 (falco#2191): kernel version ``1_<minikube version>`` from etc/VERSION.

    ``v1.26.0-1655407986-14197`` -> ``1_1.26.0``: minikube ISOs share kernels across
    releases, so the prebuilt drivers are keyed by minikube's own version.
    """
    found = _MINIKUBE_VERSION.search(facts.minikube_version or "")
    if not found:
        raise FactsError(
            "etc/VERSION marks a minikube host but holds no version like 1.26.0: "
            "Falco's loader stops there"
        )
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


def falcoctl_unparsable_release(facts: HostFacts, names: Names) -> Names:
    """Falco 0.37-0.38: falcoctl could not parse a release like ``6.1.85+`` (COS).

    driverkit's release pattern did not accept a bare trailing ``+``, so the loader
    asked for a file with an empty kernel release (falco#3278, fixed for 0.39). We
    refuse rather than name such a file.
    """
    if re.fullmatch(r"\d+\.\d+\.\d+\+", facts.kernel_release):
        raise FactsError(
            f"Falco 0.37 and 0.38 cannot parse the kernel release {facts.kernel_release!r} "
            "and request a driver with an empty kernel release (falcosecurity/falco#3278); "
            "use Falco 0.39 or later, or modern_ebpf"
        )
    return names


RULES: tuple[Rule, ...] = (
    Rule("*", FIRST_FALCOCTL, V(0, 39, 0), falcoctl_unparsable_release),
    Rule("ubuntu", None, V(0, 33, 0), ubuntu_aws_or_generic),
    Rule("ubuntu", V(0, 33, 0), V(0, 35, 1), ubuntu_flavor_with_suffix),
    Rule("ubuntu", V(0, 35, 1), FIRST_FALCOCTL, ubuntu_flavor),
    Rule("ubuntu", FIRST_FALCOCTL, None, ubuntu_falcoctl),
    Rule("amzn", None, V(0, 35, 0), amzn_2_only),
    Rule("amzn", V(0, 35, 0), None, amzn_by_version),
    Rule("debian", V(0, 35, 0), V(0, 35, 1), debian_release_arch_only),
    Rule("debian", V(0, 35, 1), FIRST_FALCOCTL, debian_release_with_flavor),
    Rule("debian", FIRST_FALCOCTL, None, debian_falcoctl),
    Rule("flatcar", None, None, flatcar_release),
    Rule("minikube", V(0, 33, 0), None, minikube_version),
    Rule("bottlerocket", V(0, 34, 0), None, bottlerocket_version),
    Rule("talos", V(0, 35, 0), None, talos_version),
)

# The versions where some naming rule starts or stops (0.37.1: falcoctl's kernel version).
BOUNDARIES: tuple[FalcoVersion, ...] = tuple(
    sorted({v for r in RULES for v in (r.since, r.until) if v is not None} | {V(0, 37, 1)})
)


# -- which distro the loader thinks it is on ---------------------------------------------

_LEGACY_DISTRO = {
    "etc/debian_version": "debian",
    "etc/centos-release": "centos",
    "etc/redhat-release": "rhel",
}


def distro_id(facts: HostFacts, falco: FalcoVersion) -> str:
    """The distro name the loader's rules match on (before any rewrite).

    Both loaders read ``ID`` from etc/os-release and fall back on etc/debian_version,
    etc/centos-release, etc/redhat-release. The host's etc/VERSION means minikube: from
    0.33 (falco#2191) the bash loader believes its mere presence (with an os-release or
    legacy file), falcoctl only when it holds a version. Before 0.33 a containerised loader
    did not see the host's file (falco#1276 asked for ``falco_buildroot_...``, falco#1941),
    so minikube was named by its os-release ``ID=buildroot``. The bash loader matches
    ``ID`` as written; falcoctl lowers it.
    """
    bash = versions.loader_kind(falco) is LoaderKind.BASH
    minikube = (
        facts.minikube_version is not None
        and falco >= V(0, 33, 0)
        and (bash or _MINIKUBE_VERSION.search(facts.minikube_version) is not None)
    )
    if facts.has_os_release:
        if not facts.os_id:
            raise FactsError("os-release has no ID: Falco's loader cannot name the distro")
        found = facts.os_id if bash else facts.os_id.lower()
    elif minikube and not bash:
        return "minikube"
    elif facts.legacy_release_files:
        found = _LEGACY_DISTRO[facts.legacy_release_files[0]]
    else:
        raise FactsError(
            "no etc/os-release, usr/lib/os-release, etc/debian_version, etc/centos-release "
            "or etc/redhat-release: Falco's loader cannot name the distro and downloads nothing"
        )
    return "minikube" if minikube else found


def kernel_id(facts: HostFacts, falco: FalcoVersion) -> KernelId:
    """The kernel as the loader shipped with ``falco`` names it, arch in store spelling."""
    try:
        arch = store_arch(facts.machine)
    except ValueError as exc:
        raise FactsError(f"{exc} (uname -m of this host)") from None
    distro = distro_id(facts, falco)
    names = Names(
        target=distro.lower(),
        release=facts.kernel_release,
        version=default_kernel_version(facts.kernel_version, falco),
    )
    for rule in RULES:
        if rule.covers(distro, falco):
            names = rule.apply(facts, names)
    for part, value in (("target", names.target), ("kernel release", names.release),
                        ("kernel version", names.version)):
        if not value or "/" in value:
            raise FactsError(f"Falco {falco}'s loader would request an unusable {part} {value!r}")
    return KernelId(names.target, names.release, names.version, arch)
