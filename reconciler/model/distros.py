"""Which distro each loader believes it is on: the bash loader's files and falcoctl's
os-release keys, before any naming rule rewrites a part. A loader that cannot tell says so
(``Unnamed``), and downloads nothing."""

from __future__ import annotations

import re

from reconciler.model import versions
from reconciler.model.host import HostFacts
from reconciler.model.kernelparts import Unnamed, V
from reconciler.model.versions import FalcoVersion, LoaderKind

MINIKUBE_VERSION = re.compile(r"([0-9]+(\.[0-9]+){2})")


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
            and MINIKUBE_VERSION.search(facts.minikube_version) is not None)


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
