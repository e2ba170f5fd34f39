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
from reconciler.model import versions
from reconciler.model.artifacts import KernelId, store_arch
from reconciler.model.host import HostFacts
from reconciler.model.versions import FalcoVersion, LoaderKind


@dataclass(frozen=True)
class Names:
    """The three name parts while the rules rewrite them, for the loader of ``falco``."""

    target: str
    release: str
    version: str
    falco: FalcoVersion


@dataclass(frozen=True)
class Unnamed:
    """The loader of this Falco version names no driver on this host; ``reason`` says why.

    Nothing is downloaded there, so nothing is built for it either.
    """

    reason: str


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


# -- kernel release: falcoctl re-renders `uname -r` through driverkit's parser ----------

@dataclass(frozen=True)
class ParsedRelease:
    """``uname -r`` as driverkit's ``kernelrelease.FromString`` splits it.

    falcoctl names the release ``full + extra`` (``KernelRelease.String()``), not ``uname -r``:
    a release the pattern does not match becomes ``""``, and a trailing ``+build`` part the
    pattern sets apart is dropped.
    """

    full: str  # X.Y[.Z]
    extra: str  # what follows, from its leading - . or +

    def __str__(self) -> str:
        return self.full + self.extra


def _driverkit_pattern(*, number: str, bare_sign: bool, major_only: bool) -> re.Pattern[str]:
    """driverkit's kernel release grammar, in the variant a driverkit release used.

    ``number``: how a numeric part is spelled (no leading zeros before driverkit v0.19);
    ``bare_sign``: a lone ``-``/``.``/``+`` may end the release (v0.20.3, for COS's
    ``6.1.85+``, falco#3278); ``major_only``: ``X`` alone is a release (v0.23).
    Go's regexp picks the submatches a backtracking engine would, as Python's ``re`` does.
    """
    plain = r"(?:0|[1-9]\d*)"
    minor_patch = rf"\.{plain}[.+]?(?:{plain})?"
    version = rf"{plain}(?:{minor_patch})?" if major_only else plain + minor_patch
    first = rf"(?:{number}|\d*[a-zA-Z-][0-9a-zA-Z-]*)" + ("?" if bare_sign else "")
    more = rf"(?:[.+~](?:{number}|\d*[a-zA-Z-][0-9a-zA-Z_-]*))*"
    build = r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
    return re.compile(rf"(?P<full>{version})(?P<extra>[-.+]{first}{more})?{build}\Z", re.ASCII)


# driverkit in falcoctl: v0.16.0 (falcoctl 0.7, Falco 0.37), v0.19.2/v0.20.0 (falcoctl
# 0.8/0.9, Falco 0.38), v0.20.3-v0.22.1 (falcoctl 0.10-0.12, Falco 0.39-0.43), v0.23.1
# (falcoctl 0.13, Falco 0.44).
_DRIVERKIT_RELEASE: tuple[tuple[FalcoVersion, re.Pattern[str]], ...] = (
    (V(0, 44, 0), _driverkit_pattern(number=r"\d+", bare_sign=True, major_only=True)),
    (V(0, 39, 0), _driverkit_pattern(number=r"\d+", bare_sign=True, major_only=False)),
    (V(0, 38, 0), _driverkit_pattern(number=r"\d+", bare_sign=False, major_only=False)),
    (FIRST_FALCOCTL, _driverkit_pattern(number=r"(?:0|[1-9]\d*)", bare_sign=False,
                                        major_only=False)),
)


def driverkit_release(release: str, falco: FalcoVersion) -> ParsedRelease:
    """``release`` as the driverkit inside Falco ``falco``'s falcoctl parses it (>= 0.37)."""
    pattern = next(p for since, p in _DRIVERKIT_RELEASE if falco >= since)
    match = pattern.match(release)
    if match is None:
        return ParsedRelease("", "")
    return ParsedRelease(match["full"], match["extra"] or "")


def default_release(uname_r: str, falco: FalcoVersion) -> str:
    """The bash loaders name ``uname -r`` as is; falcoctl its driverkit rendering."""
    if falco < FIRST_FALCOCTL:
        return uname_r
    return str(driverkit_release(uname_r, falco))


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


_MINIKUBE_VERSION = re.compile(r"([0-9]+(\.[0-9]+){2})")


def minikube_version(facts: HostFacts, names: Names) -> Names | Unnamed:
    """Falco >= 0.33 (falco#2191): kernel version ``1_<minikube version>`` from etc/VERSION.

    ``v1.26.0-1655407986-14197`` -> ``1_1.26.0``: minikube ISOs share kernels across
    releases, so the prebuilt drivers are keyed by minikube's own version.
    """
    found = _MINIKUBE_VERSION.search(facts.minikube_version or "")
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


# -- which distro the loader thinks it is on ---------------------------------------------

_LEGACY_DISTRO = {
    "etc/debian_version": "debian",
    "etc/centos-release": "centos",
    "etc/redhat-release": "rhel",
}


def bash_distro(facts: HostFacts, falco: FalcoVersion) -> str | Unnamed:
    """Falco <= 0.36: the distro the bash loader's ``get_target_id`` matches on.

    It sources etc/os-release when the file exists (empty or not; usr/lib/os-release is
    never read) and takes ``ID`` as written. Without it: etc/debian_version, then
    etc/centos-release, then (from 0.34.0, falco 70dfdb2) etc/redhat-release; up to 0.32
    a bare etc/VERSION means minikube. With none of those it stops ("unsupported target
    system"; 0.36 says "undetermined") and downloads nothing. From 0.33.0 (falco#2191)
    an etc/VERSION next to any of those files makes it minikube, whatever it holds.
    """
    if facts.has_etc_os_release:
        found = facts.os_id
    else:
        legacy = [f for f in facts.legacy_release_files
                  if f != "etc/redhat-release" or falco >= V(0, 34, 0)]
        if legacy:
            found = _LEGACY_DISTRO[legacy[0]]
        elif facts.minikube_version is not None and falco < V(0, 33, 0):
            return "minikube"
        else:
            known = "etc/debian_version, etc/centos-release" + (
                " or etc/redhat-release" if falco >= V(0, 34, 0) else
                " or etc/VERSION" if falco < V(0, 33, 0) else "")
            return Unnamed(f"no etc/os-release, {known}: Falco {falco}'s loader cannot name "
                           "the distro and downloads nothing")
    if facts.minikube_version is not None and falco >= V(0, 33, 0):
        return "minikube"
    if not found:
        return Unnamed(f"etc/os-release has no ID: Falco {falco}'s loader would request a "
                       "driver with an empty target")
    return found


# The os-release keys falcoctl's distros read in their init: without one the distro
# fails and falcoctl looks elsewhere (falcoctl amzn.go, bottlerocket.go, cos.go,
# flatcar.go, talos.go, the same from v0.7.1 to v0.13.0).
FALCOCTL_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "amzn": ("VERSION_ID",),
    "bottlerocket": ("VERSION_ID", "VARIANT_ID"),
    "cos": ("BUILD_ID",),
    "flatcar": ("VERSION_ID",),
    "talos": ("VERSION_ID",),
}


def _falcoctl_minikube(facts: HostFacts) -> bool:
    """falcoctl's minikube check: etc/VERSION exists and holds a version like 1.26.0."""
    return (facts.minikube_version is not None
            and _MINIKUBE_VERSION.search(facts.minikube_version) is not None)


def falcoctl_distro(facts: HostFacts, falco: FalcoVersion) -> str | Unnamed:
    """Falco >= 0.37: the distro falcoctl's ``Discover`` settles on.

    It reads etc/os-release only, lowers ``ID``, and says minikube when etc/VERSION
    holds a version. The distro is refused when an os-release key it needs is missing
    (``FALCOCTL_REQUIRED_KEYS``, absent rather than empty) or, from falcoctl v0.8.0
    (Falco 0.38), when there is no ``ID``; falcoctl v0.7 (Falco 0.37) instead goes on
    with no distro and crashes. Then it tries, in Go's random map order, the distros
    that check a file: centos (etc/centos-release), debian (etc/debian_version), rhel
    (etc/redhat-release), minikube (etc/VERSION with a version). None: the distro is
    "undetermined" and nothing is downloaded. More than one: the name changes from run
    to run, so we name none.
    """
    why = "there is no etc/os-release"
    if facts.has_etc_os_release:
        if facts.os_has("ID"):
            found = "minikube" if _falcoctl_minikube(facts) else facts.os_id.lower()
            missing = [k for k in FALCOCTL_REQUIRED_KEYS.get(found, ()) if not facts.os_has(k)]
            if not missing:
                return found
            why = f"etc/os-release has ID={found} but no {' or '.join(missing)}"
        elif falco < V(0, 38, 0):
            return Unnamed(f"etc/os-release has no ID: the falcoctl of Falco {falco} finds "
                           "no distro and crashes before any download")
        else:
            why = "etc/os-release has no ID"
    candidates = sorted({_LEGACY_DISTRO[f] for f in facts.legacy_release_files}
                        | ({"minikube"} if _falcoctl_minikube(facts) else set()))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        return Unnamed(f"{why}, and falcoctl (Falco {falco}) picks one of "
                       f"{', '.join(candidates)} at random from the release files present")
    return Unnamed(f"{why} and no etc/centos-release, etc/debian_version, etc/redhat-release "
                   f"or etc/VERSION: the falcoctl of Falco {falco} leaves the distro "
                   "undetermined and downloads nothing")


def distro_id(facts: HostFacts, falco: FalcoVersion) -> str | Unnamed:
    """The distro name the loader's rules match on (before any rewrite), or why none."""
    if versions.loader_kind(falco) is LoaderKind.BASH:
        return bash_distro(facts, falco)
    return falcoctl_distro(facts, falco)


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
