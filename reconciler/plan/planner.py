"""Up to the plan: manifests -> facts -> desired -> observed -> plan, reading every edge once.

The edges (git, the host's files, the store, Docker, the upstreams) are read here and
nowhere else in a pass; everything between is the pure core. Manifests are remembered by
the tree they came from (``ManifestCache``), so a daemon pass on an unchanged revision
parses nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import desired, plan
from reconciler.edges.docker.client import socket_path
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.git import repo as gitrepo
from reconciler.edges.host import apt, kmod
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.host import openssl as modsign
from reconciler.edges.state import buildqueue, ledger
from reconciler.edges.store import local as stores
from reconciler.errors import CertificateUnreadable, ConfigError
from reconciler.manifests import loading
from reconciler.manifests.models import DriverBuild, ManifestSet
from reconciler.model import container
from reconciler.model import upstreams as fleet
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested
from reconciler.model.host import HostFacts
from reconciler.model.modes import DriverMode, PullPolicy
from reconciler.model.observations import ObservedContainer, ObservedImage
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe import state as observed
from reconciler.observe import survey
from reconciler.plan import retention
from reconciler.settings import Settings

Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Inputs:
    revision: str
    manifests: ManifestSet
    facts: HostFacts


@dataclass(frozen=True)
class Planned:
    inputs: Inputs
    desired: desired.DesiredState
    observed: observed.ObservedState
    plan: plan.Plan
    retention: retention.Review | None = None

    def remember(self, state_dir: Path) -> None:
        """Write what retention saw in this pass: call once the plan was applied."""
        if self.retention is not None:
            ledger.write(state_dir, self.retention.ledger)


@dataclass
class ManifestCache:
    """The manifests of the trees seen last (a few: the head and the last good one), and
    what each file of the last one read held."""

    keep: int = 4
    _by_tree: dict[str, ManifestSet] = field(default_factory=dict)
    # The files of the revision read last, by content: a one-file push parses one file.
    files: loading.Memo = field(default_factory=dict)
    # The desired state last computed, by everything it was computed from: a pass on an
    # unchanged revision computes nothing (the observation is always made anew).
    desired: tuple[tuple[object, ...], desired.DesiredState] | None = None
    # Each DriverBuild's artifact keys, by document (documents of unchanged files are the
    # same objects from pass to pass); the document is kept with them, so its id stays its.
    build_keys: dict[int, tuple[DriverBuild, tuple[ArtifactKey, ...]]] = field(
        default_factory=dict)

    def keys_of(self, build: DriverBuild) -> tuple[ArtifactKey, ...]:
        found = self.build_keys.get(id(build))
        if found is None or found[0] is not build:
            found = (build, build.spec.artifact_keys())
            self.build_keys[id(build)] = found
        return found[1]

    def forget_builds_but(self, manifests: ManifestSet) -> None:
        """Keep only the keys of the builds of ``manifests`` (the revision just planned)."""
        live = {id(b.value) for b in manifests.builds}
        for ident in [i for i in self.build_keys if i not in live]:
            del self.build_keys[ident]

    def known(self) -> tuple[str, ...]:
        return tuple(self._by_tree)

    def get(self, tree: str) -> ManifestSet | None:
        return self._by_tree.get(tree)

    def put(self, tree: str, manifests: ManifestSet) -> None:
        self._by_tree.pop(tree, None)
        self._by_tree[tree] = manifests
        while len(self._by_tree) > self.keep:
            self._by_tree.pop(next(iter(self._by_tree)))


_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names, not binds


def drivers_url(settings: Settings, gateway: str | None = None) -> str:
    """Where Falco reaches our server: on loopback from the host network, or at the
    gateway of its bridge network (which the server must then listen on)."""
    host, port = settings.listen_address
    if gateway is not None:
        if host not in (*_WILDCARDS, gateway):
            raise ConfigError(
                f"Falco on a bridge network reaches this host at {gateway}, but the driver "
                f"server listens on {host}: set --listen 0.0.0.0:{port} or {gateway}:{port}"
            )
        host = gateway
    elif host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def wanted_signers(want: desired.DesiredState) -> dict[ArtifactKey, stores.WantedSigner]:
    """The signer each module wanted signed must carry, by its certificate (read once per
    certificate here); an unreadable certificate leaves why, and no module passes it."""
    by_path: dict[str, stores.WantedSigner] = {}
    signers: dict[ArtifactKey, stores.WantedSigner] = {}
    for artifact in want.artifacts:
        if artifact.signing is None:
            continue
        path = artifact.signing.certificate
        if not artifact.signing.known:
            by_path[path] = (f"the signing key {artifact.signing.name!r} is not in this "
                             "build host's keyring (signing_keys)")
        elif path not in by_path:
            try:
                by_path[path] = modsign.read_certificate(Path(path)).signer
            except CertificateUnreadable as exc:
                by_path[path] = str(exc)
        signers[artifact.key] = by_path[path]
    return signers


@dataclass
class Planner:
    settings: Settings
    engine: ContainerEngine
    store: stores.Store
    manifests: ManifestCache = field(default_factory=ManifestCache)
    clock: Clock = _now
    indexes: survey.IndexCache = field(default_factory=survey.IndexCache)
    connect: survey.Connect | None = None  # how upstreams are reached (None: edges.http.upstream)

    def read_inputs(self) -> Inputs:
        """Read git, the manifests (unless their tree is known) and the host's facts."""
        conf = self.settings
        snap = gitrepo.snapshot(conf.repo, conf.ref, conf.path, conf.state_dir,
                                loading.is_manifest_path, known_trees=self.manifests.known(),
                                max_bytes=loading.MAX_FILE_BYTES)
        manifests = self.manifests.get(snap.tree)
        if manifests is None:
            assert snap.files is not None
            manifests = loading.load(snap.files, self.manifests.files)
            self.manifests.put(snap.tree, manifests)
        facts = hostfacts.read(conf.host_root, hostname=conf.hostname)
        return Inputs(snap.revision, manifests, facts)

    def drivers_url_for(self, manifests: ManifestSet, hostname: str) -> str:
        """The URL for the network this host's Falco will be on."""
        located = manifests.host_for(hostname)
        network = located.value.spec.falco.network if located else "host"
        if network == "host":
            return drivers_url(self.settings)
        return drivers_url(self.settings, self.engine.network_gateway(network))

    def observe(self, want: desired.DesiredState) -> observed.ObservedState:
        held = stores.observe(self.store, (a.key for a in want.artifacts),
                              signers=wanted_signers(want))
        containers = self._containers(want)
        image = None
        module = None
        module_file_version = None
        if want.container is not None:
            running = next((c for c in containers if c.name == want.container.spec.name), None)
            image = self._image(want.container, running)
            if want.container.mode is DriverMode.KMOD_PRELOADED:
                module = kmod.observe(self.settings.host_root)
                if want.container.artifact is not None:
                    module_file_version = self.store.module_version(want.container.artifact)
        found = self._survey(want, held)
        return observed.from_parts(held.present, held.corrupt, containers, image, module=module,
                                   unsafe=held.unsafe, misfits=held.misfits, stored=held.stored,
                                   unsigned=held.unsigned, module_file_version=module_file_version,
                                   offers=found.offers, upstream_notes=found.notes,
                                   upstreams_down=found.down)

    def _survey(self, want: desired.DesiredState, held: stores.Observation) -> survey.Survey:
        """Which upstream has each artifact the store lacks, unless this host always
        builds; modules wanted signed are always built (no upstream signs with our key)."""
        conf = self.settings
        if conf.build is BuildPolicy.ALWAYS or not conf.upstreams:
            return survey.Survey()
        unsafe = {key for key, _folder in held.unsafe}
        missing = [a.key for a in want.artifacts if a.signing is None
                   and a.key not in held.present and a.key not in unsafe]
        if self.connect is None:
            return survey.survey(conf.upstreams, missing, self.indexes)
        return survey.survey(conf.upstreams, missing, self.indexes, connect=self.connect)

    def review(self, inputs: Inputs, want: desired.DesiredState,
               actual: observed.ObservedState) -> retention.Review:
        """Retention's verdict on the store, against the ledger of earlier passes."""
        return retention.review(
            stored=actual.stored - actual.corrupt,
            wanted={a.key.relpath for a in want.artifacts},
            named=retention.named(inputs.manifests, self.manifests.keys_of),
            kernels=retention.host_kernels(want), ledger=ledger.read(self.settings.state_dir),
            now=self.clock(), grace=dt.timedelta(seconds=self.settings.retention),
        )

    def _containers(self, want: desired.DesiredState) -> tuple[ObservedContainer, ...]:
        """Our labelled containers (of this host name) plus any container holding the
        wanted name."""
        found = {c.id: c for c in self.engine.containers({container.LABEL_MANAGED: "true"})
                 if container.ours(c.label_map, want.hostname)}
        if want.container is not None:
            named = self.engine.container(want.container.spec.name)
            if named is not None:
                found[named.id] = named
        return tuple(found.values())

    def _image(
        self, want: desired.DesiredContainer, running: ObservedContainer | None,
    ) -> ObservedImage:
        """The local image; with ``pull: always`` also the digest its registry serves now
        and the digests of the image Falco runs. The registry is asked without pulling,
        so a plan stays free of changes."""
        ref = want.spec.image
        local = self.engine.image_id(ref)
        if want.pull is not PullPolicy.ALWAYS:
            return ObservedImage(ref, local)
        remote = self.engine.registry_digest(ref)
        digests = self.engine.repo_digests(running.image_id) if running and running.image_id \
            else ()
        return ObservedImage(ref, local, remote, digests)

    def desire(self, inputs: Inputs) -> desired.DesiredState:
        """The desired state, computed unless nothing it depends on changed."""
        drivers_url = self.drivers_url_for(inputs.manifests, inputs.facts.hostname)
        patterns = sorted({b.value.spec.newest_kernel
                           for b in inputs.manifests.builds_for(inputs.facts.hostname)
                           if b.value.spec.newest_kernel is not None})
        newest = {p: apt.newest_release(self.settings.host_root, p) for p in patterns}
        falco_home = str(self.settings.host_root / "root/.falco")
        docker_socket = socket_path()
        mirrors = fleet.falco_mirrors(self.settings.upstreams) \
            if self.settings.falco_upstreams else ()
        requested = self.requested()
        key = (inputs.revision, inputs.facts, drivers_url, self.settings.privileged,
               docker_socket, falco_home, tuple(newest.values()), mirrors, requested)
        cached = self.manifests.desired
        if cached is not None and cached[0] == key:
            return cached[1]
        want = desired.compute(
            inputs.manifests, inputs.facts, inputs.revision, drivers_url=drivers_url,
            privileged=self.settings.privileged, docker_socket=docker_socket,
            keys_of=self.manifests.keys_of, newest=newest, falco_home=falco_home,
            mirrors=mirrors, requested=requested, keyring=self.settings.keyring,
        )
        self.manifests.forget_builds_but(inputs.manifests)
        self.manifests.desired = (key, want)
        return want

    def requested(self) -> tuple[tuple[Requested, tuple[str, ...]], ...]:
        """On a build host, what other hosts asked it to build (its build queue)."""
        if not self.settings.accept_build_requests:
            return ()
        return buildqueue.read(self.settings.state_dir).requested()

    def plan(self, *, adopt: bool = False) -> Planned:
        inputs = self.read_inputs()
        want = self.desire(inputs)
        actual = self.observe(want)
        retained = self.review(inputs, want, actual)
        made = plan.diff(want, actual, adopt=adopt, retained=retained,
                         build=self.settings.build)
        if self.settings.build is BuildPolicy.NEVER:
            made = plan.requests_instead(
                made, build_hosts=any(u.build_requests for u in self.settings.upstreams),
                down=actual.upstreams_down)
        return Planned(inputs, want, actual, made, retained)
