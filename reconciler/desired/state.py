"""Desired state: what this host must have, from the manifests at one revision and its facts.

Pure: no I/O. The host's Falco needs the artifact its loader will ask for (named by the
rules of that Falco version, ``model.kernelnames``), and, so that a reboot into another
kernel never finds Falco without its driver, the same kind for the Host's other kernels:
every installed one as it will be once booted (``kernels: installed``, the default), none
(``running``), or those the Host lists. Every DriverBuild that matches the host adds its
artifacts. The same artifact wanted twice is built once, remembering everyone who wants it.

A loader may name a kernel otherwise than ``uname -r`` does (Falco 0.35+ on Debian rebuilds
the release from ``uname -v``); the artifact then carries the real release too, which the
builder needs for the kernel's headers and to check the module's vermagic.
A module wanted signed (a Host's or DriverBuild's ``signing``) carries that key and
certificate; wanted with two, the first in manifest order is used and a note says so.
On a build host, the artifacts other hosts asked for (``requested``, its build queue) are
wanted by ``BuildRequest/<host>``, built and served like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from reconciler.manifests.models import (
    DriverBuild,
    FalcoSpec,
    Host,
    Located,
    ManifestSet,
    SigningSpec,
)
from reconciler.model import container, kernelnames
from reconciler.model.artifacts import KIND_OF_MODE, ArtifactKey, DriverKind
from reconciler.model.buildrequests import Requested
from reconciler.model.host import HostFacts, InstalledKernel, Newest, VersionSource
from reconciler.model.modes import DriverMode, PullPolicy
from reconciler.model.modsig import Signing


class DesiredArtifact(NamedTuple):
    """An artifact this host must have, and every manifest that wants it (a named tuple:
    a large plan makes tens of thousands)."""

    key: ArtifactKey
    wanted_by: tuple[str, ...]
    kernel_urls: tuple[str, ...] = ()
    # The kernel's own ``uname -r`` where the key names it otherwise; "" when they agree.
    uname_release: str = ""
    signing: Signing | None = None  # a module to sign with this key and certificate
    # The Falco versions that load it: a Host's own; for a DriverBuild, every Host of the
    # repository on its driver version and kind. Its load test tries their userspaces.
    falcos: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredContainer:
    spec: container.ContainerSpec
    host: str  # the Host manifest's name
    falco_version: str
    mode: DriverMode
    artifact: ArtifactKey | None  # what must be built and served before it may (re)start
    drivers_url: str  # where this container reaches our server (its DRIVERS_REPO)
    adopt: bool = False
    pull: PullPolicy = PullPolicy.MISSING
    # Why this Falco is left as it is: its loader names no driver on this host, so there
    # is nothing to build and starting it could only fail.
    blocked: str | None = None
    # Falco's web server port: a (re)start is ready when its /healthz answers.
    healthz_port: int | None = None


@dataclass(frozen=True)
class DesiredState:
    revision: str
    hostname: str
    host: str | None  # the matching Host manifest, None when no Host matches
    artifacts: tuple[DesiredArtifact, ...]
    container: DesiredContainer | None
    notes: tuple[str, ...] = ()  # what is wanted but cannot be named now, and why
    # The host's own kernels (``uname -r``) and the artifact the Host wants for each: the
    # running one and the installed ones (retention keeps the previous kernel's).
    host_kernels: tuple[tuple[str, ArtifactKey], ...] = ()
    # Indexed once: the executor looks up every change's artifact (tens of thousands).
    _by_key: Mapping[ArtifactKey, DesiredArtifact] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {a.key: a for a in self.artifacts})

    def artifact(self, key: ArtifactKey) -> DesiredArtifact | None:
        return self._by_key.get(key)


def container_spec(
    falco: FalcoSpec, *, drivers_url: str, driver_relpath: str = "", privileged: bool = True,
    docker_socket: str = container.DOCKER_SOCKET, falco_home: str = "/root/.falco",
    mirrors: tuple[str, ...] = (),
) -> container.ContainerSpec:
    """The container a Host's ``falco`` section asks for (the manifest meets the model)."""
    return container.spec_for(
        name=falco.container_name, image=container.image_ref(falco.image, falco.version),
        version=falco.falco_version, mode=falco.driver, env=falco.env, network=falco.network,
        drivers_url=drivers_url, driver_relpath=driver_relpath, privileged=privileged,
        docker_socket=docker_socket, loader_image=falco.driver_loader_image,
        falco_home=falco_home, mirrors=mirrors,
    )


def host_artifact(host: Host, facts: HostFacts) -> ArtifactKey | kernelnames.Unnamed | None:
    """The artifact this host's Falco will request for the running kernel; None if its
    mode needs none, ``Unnamed`` if its loader names none here."""
    falco = host.spec.falco
    kind = KIND_OF_MODE.get(falco.driver)
    if kind is None:
        return None
    kernel = kernelnames.name(facts, falco.falco_version)
    if isinstance(kernel, kernelnames.Unnamed):
        return kernel
    return ArtifactKey.for_kernel(kernel, falco.resolved_driver_version(), kind)


# How the wanted_by of each of a Host's kernels reads, after ``Host/<name>``.
RUNNING = "running kernel"
BOOTS = "the kernel this image boots"  # a root that runs none (prebuild of a golden image)
INSTALLED = "installed, not running: needed at next boot"
LISTED = "kernels"


def installed_artifacts(
    host: Host, facts: HostFacts,
) -> tuple[list[tuple[ArtifactKey, InstalledKernel]], list[str]]:
    """The artifacts this host's Falco will request once each installed kernel other than
    the running one is booted, and a note for each kernel its loader names no driver for."""
    falco = host.spec.falco
    kind = KIND_OF_MODE.get(falco.driver)
    if kind is None or not host.spec.wants_installed:
        return [], []
    found: list[tuple[ArtifactKey, InstalledKernel]] = []
    notes: list[str] = []
    for kernel in facts.installed_kernels:
        if kernel.release == facts.kernel_release:
            continue  # the running kernel: named from the running facts
        named = kernelnames.name(facts.booted(kernel), falco.falco_version)
        if isinstance(named, kernelnames.Unnamed):
            notes.append(f"Host/{host.metadata.name}: installed kernel {kernel.release} "
                         f"(not running): Falco {falco.version}'s loader names no driver for "
                         f"it ({named.reason}); nothing is built for it")
            continue
        found.append((ArtifactKey.for_kernel(named, falco.resolved_driver_version(), kind),
                      kernel))
    return found, notes


def listed_artifacts(host: Host) -> tuple[ArtifactKey, ...]:
    """The artifacts a Host names itself: its listed ``kernels``, of its driver version and
    kind (none for a driverless mode)."""
    falco = host.spec.falco
    kind = KIND_OF_MODE.get(falco.driver)
    if kind is None or not host.spec.listed_kernels:
        return ()
    version = falco.resolved_driver_version()
    return tuple(ArtifactKey.for_kernel(k.kernel_id(), version, kind)
                 for k in host.spec.listed_kernels)


def _other_release(key: ArtifactKey, release: str) -> str:
    return "" if key.kernel_release == release else release


KeysOf = Callable[[DriverBuild], tuple[ArtifactKey, ...]]


def _keys_of(build: DriverBuild) -> tuple[ArtifactKey, ...]:
    return build.spec.artifact_keys()


def _image_root(facts: HostFacts) -> bool:
    """Whether the facts' kernel is one an image root will boot, not one that runs."""
    return any(k.release == facts.kernel_release and k.source is not VersionSource.RUNNING
               for k in facts.installed_kernels)


def _build_keys(build: DriverBuild, keys_of: KeysOf,
                newest: Mapping[str, Newest] | None) -> tuple[ArtifactKey, ...] | str:
    """A DriverBuild's keys on this host, or the note saying why it names none now."""
    pattern = build.spec.newest_kernel
    if pattern is None:
        return keys_of(build)
    resolved = (newest or {}).get(pattern)
    if resolved is None or resolved.release is None:
        why = resolved.reason if resolved is not None else "not resolved"
        return (f"DriverBuild/{build.metadata.name}: newestKernel {pattern}: {why}; "
                "nothing is built for it")
    return build.spec.artifact_keys(resolved.release)


def _signing(spec: SigningSpec | None, ring: Mapping[str, Signing] | None) -> Signing | None:
    """The keyring's pair a manifest names; a name it lacks, unresolved (no paths)."""
    if spec is None:
        return None
    return (ring or {}).get(spec.key) or Signing("", "", spec.key)


class _Wants:
    """What a host must have as it is gathered: each artifact once, with every manifest
    that wants it, its kernelUrls, real release, signing key and declaring Falcos."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.wanted: dict[ArtifactKey, tuple[list[str], list[str]]] = {}
        self.releases: dict[ArtifactKey, str] = {}
        self.signings: dict[ArtifactKey, Signing] = {}
        self.falcos: dict[ArtifactKey, tuple[str, ...]] = {}  # sorted, none for most

    def want(self, key: ArtifactKey, by: str, urls: tuple[str, ...] = (), *,
             release: str = "", signing: Signing | None = None,
             falco: tuple[str, ...] = ()) -> None:
        if release:
            self.releases.setdefault(key, release)
        if falco:
            had = self.falcos.get(key)
            self.falcos[key] = tuple(sorted({*had, *falco})) if had else falco
        if signing is not None and key.kind is DriverKind.KMOD:
            first = self.signings.setdefault(key, signing)
            if first != signing:
                self.notes.append(f"{by}: {key.relpath} is already wanted signed with key "
                                  f"{first.name!r}; {signing.name!r} is not used for it")
        entry = self.wanted.get(key)
        if entry is None:
            self.wanted[key] = ([by], list(dict.fromkeys(urls)))
            return
        who, kernel_urls = entry
        if by not in who:
            who.append(by)
        kernel_urls.extend(u for u in urls if u not in kernel_urls)

    def artifacts(self) -> tuple[DesiredArtifact, ...]:
        return tuple(
            DesiredArtifact(key, tuple(who), tuple(urls), self.releases.get(key, ""),
                            self.signings.get(key), self.falcos.get(key, ()))
            # Keys are unique and order by driver version, arch, kernel, kind.
            for key, (who, urls) in sorted(self.wanted.items())
        )


def _declaring(manifests: ManifestSet) -> dict[tuple[str, DriverKind], tuple[str, ...]]:
    """The Falco versions of the repository's Hosts by the driver version and kind they
    load (what a DriverBuild's drivers are load-tested with, besides their own libs)."""
    found: dict[tuple[str, DriverKind], set[str]] = {}
    seen: set[tuple[str, str | None, DriverMode]] = set()
    for located in manifests.hosts:
        falco = located.value.spec.falco
        kind = KIND_OF_MODE.get(falco.driver)
        if kind is None or (falco.version, falco.driver_version, falco.driver) in seen:
            continue
        seen.add((falco.version, falco.driver_version, falco.driver))
        found.setdefault((falco.resolved_driver_version(), kind), set()).add(falco.version)
    return {used: tuple(sorted(falcos)) for used, falcos in found.items()}


def compute(
    manifests: ManifestSet, facts: HostFacts, revision: str, *, drivers_url: str,
    privileged: bool = True, docker_socket: str = container.DOCKER_SOCKET,
    keys_of: KeysOf = _keys_of, newest: Mapping[str, Newest] | None = None,
    falco_home: str = "/root/.falco", mirrors: tuple[str, ...] = (),
    requested: Sequence[tuple[Requested, tuple[str, ...]]] = (),
    keyring: Mapping[str, Signing] | None = None,
) -> DesiredState:
    """What this host must have. ``keys_of`` gives a DriverBuild's artifact keys (the
    daemon remembers them per document across passes); ``newest`` what each
    ``newestKernel`` pattern resolved to on this host; ``mirrors`` the upstreams Falco's
    loader may fall back on after our server; ``requested`` what other hosts asked this
    build host for, with their names; ``keyring`` the host's signing keys by name (a
    manifest names one; a name it lacks is carried unresolved and its build says why)."""
    wants = _Wants()
    want, notes = wants.want, wants.notes
    host_kernels: list[tuple[str, ArtifactKey]] = []

    located: Located[Host] | None = manifests.host_for(facts.hostname)
    desired_container = None
    if located is not None:
        host = located.value
        falco = host.spec.falco
        found = host_artifact(host, facts)
        key = found if isinstance(found, ArtifactKey) else None
        blocked = None
        if isinstance(found, kernelnames.Unnamed):
            blocked = (f"Falco {falco.version}'s loader names no driver on this host "
                       f"({found.reason}): nothing is built for it, and Falco is left as it is")
        name = host.metadata.name
        signing = _signing(host.spec.signing, keyring)
        if key is not None:
            want(key, f"Host/{name} ({BOOTS if _image_root(facts) else RUNNING})",
                 release=_other_release(key, facts.kernel_release), signing=signing,
                 falco=(falco.version,))
            host_kernels.append((facts.kernel_release, key))
            for extra in host.spec.listed_kernels:
                want(ArtifactKey.for_kernel(extra.kernel_id(), key.driver_version, key.kind),
                     f"Host/{name} ({LISTED})", signing=signing, falco=(falco.version,))
        installed, unnamed = installed_artifacts(host, facts)
        notes += unnamed
        for other, kernel in installed:
            want(other, f"Host/{name} ({INSTALLED})",
                 release=_other_release(other, kernel.release), signing=signing,
                 falco=(falco.version,))
            host_kernels.append((kernel.release, other))
        spec = container_spec(falco, drivers_url=drivers_url,
                              driver_relpath=key.relpath if key else "", privileged=privileged,
                              docker_socket=docker_socket, falco_home=falco_home,
                              mirrors=mirrors)
        desired_container = DesiredContainer(
            spec=spec, host=host.metadata.name, falco_version=falco.version,
            mode=falco.driver, artifact=key, adopt=falco.adopt, pull=falco.pull,
            drivers_url=drivers_url, blocked=blocked, healthz_port=falco.webserver_port,
        )
    declaring = _declaring(manifests) if manifests.builds else {}
    for build in manifests.builds_for(facts.hostname):
        keys = _build_keys(build.value, keys_of, newest)
        if isinstance(keys, str):
            notes.append(keys)
            continue
        build_signing = _signing(build.value.spec.signing, keyring)
        for key in keys:
            want(key, f"DriverBuild/{build.value.metadata.name}", build.value.spec.kernel_urls,
                 release=_other_release(key, build.value.spec.uname_release),
                 signing=build_signing,
                 falco=declaring.get((key.driver_version, key.kind), ()))
    for item, hosts in requested:
        for asking in hosts:
            want(item.key, f"BuildRequest/{asking}", release=item.uname_release)

    return DesiredState(
        revision=revision,
        hostname=facts.hostname,
        host=located.value.metadata.name if located else None,
        artifacts=wants.artifacts(),
        container=desired_container,
        notes=tuple(notes),
        host_kernels=tuple(host_kernels),
    )
