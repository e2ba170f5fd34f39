"""Up to the plan: manifests -> facts -> desired -> observed -> plan, for one pass.

Everything a pass reads comes through the ``observe.sources.Sources`` the composition
root built (git, the host's files, the store, the engine, the upstreams, the apt lists,
the build queue, the ledger); this module calls no edge itself, so it runs the same over
``observe.fakes``. Manifests are remembered by the tree they came from
(``ManifestCache``), so a daemon pass on an unchanged revision parses nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler import desired, plan
from reconciler.errors import ConfigError
from reconciler.manifests import loading
from reconciler.manifests.models import DriverBuild, ManifestSet
from reconciler.model import container
from reconciler.model import upstreams as fleet
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested
from reconciler.model.host import HostFacts
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe import gather
from reconciler.observe import state as observed
from reconciler.observe.sources import LedgerBook, Sources
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
    ledger: LedgerBook | None = None  # where ``remember`` writes

    def remember(self) -> None:
        """Write what retention saw in this pass: call once the plan was applied."""
        if self.retention is not None and self.ledger is not None:
            self.ledger.write(self.retention.ledger)


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
    # The manifest tree of each commit read, by its full id: a commit's tree never changes,
    # so a pass that pins a commit read before asks git nothing (the daemon pins each pass).
    _tree_of: dict[str, str] = field(default_factory=dict)

    def at_commit(self, ref: str | None) -> ManifestSet | None:
        """The manifests of ``ref`` if it is a full commit id whose tree is still kept."""
        tree = self._tree_of.get(ref) if ref and _COMMIT_ID.fullmatch(ref) else None
        return self._by_tree.get(tree) if tree else None

    def read_commit(self, commit: str, tree: str) -> None:
        self._tree_of.pop(commit, None)
        self._tree_of[commit] = tree
        while len(self._tree_of) > 4 * self.keep:
            self._tree_of.pop(next(iter(self._tree_of)))

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


_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 repositories
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


@dataclass
class Planner:
    settings: Settings
    sources: Sources
    manifests: ManifestCache = field(default_factory=ManifestCache)
    clock: Clock = _now

    def read_inputs(self) -> Inputs:
        """Read git (unless the ref is a commit read before), the manifests (unless their
        tree is known) and the host's facts."""
        ref = self.settings.ref
        pinned = self.manifests.at_commit(ref)
        if pinned is not None and ref is not None:
            return Inputs(ref, pinned, self.sources.host.facts())
        snap = self.sources.manifests.snapshot(self.manifests.known())
        manifests = self.manifests.get(snap.tree)
        if manifests is None:
            assert snap.files is not None
            manifests = loading.load(snap.files, self.manifests.files)
            self.manifests.put(snap.tree, manifests)
        self.manifests.read_commit(snap.revision, snap.tree)
        return Inputs(snap.revision, manifests, self.sources.host.facts())

    def drivers_url_for(self, manifests: ManifestSet, hostname: str) -> str:
        """The URL for the network this host's Falco will be on."""
        located = manifests.host_for(hostname)
        network = located.value.spec.falco.network if located else "host"
        if network == "host":
            return drivers_url(self.settings)
        return drivers_url(self.settings, self.sources.engine.network_gateway(network))

    def observe(self, want: desired.DesiredState) -> observed.ObservedState:
        """What is there now; upstreams are asked unless this host always builds."""
        conf = self.settings
        return gather.observe(self.sources, want, ask_upstreams=bool(conf.upstreams)
                              and conf.build is not BuildPolicy.ALWAYS)

    def review(self, inputs: Inputs, want: desired.DesiredState,
               actual: observed.ObservedState) -> retention.Review:
        """Retention's verdict on the store, against the ledger of earlier passes."""
        return retention.review(
            stored=actual.stored - actual.corrupt,
            wanted={a.key.relpath for a in want.artifacts},
            named=retention.named(inputs.manifests, self.manifests.keys_of),
            kernels=retention.host_kernels(want), ledger=self.sources.ledger.read(),
            now=self.clock(), grace=dt.timedelta(seconds=self.settings.retention),
        )

    def desire(self, inputs: Inputs) -> desired.DesiredState:
        """The desired state, computed unless nothing it depends on changed."""
        drivers_url = self.drivers_url_for(inputs.manifests, inputs.facts.hostname)
        patterns = sorted({b.value.spec.newest_kernel
                           for b in inputs.manifests.builds_for(inputs.facts.hostname)
                           if b.value.spec.newest_kernel is not None})
        newest = {p: self.sources.apt.newest_release(p) for p in patterns}
        falco_home = str(self.settings.host_root / "root/.falco")
        # The root fills it from DOCKER_HOST when no setting names it.
        docker_socket = self.settings.docker_socket or container.DOCKER_SOCKET
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
        return self.sources.queue.requested()

    def plan(self, *, adopt: bool = False, review: bool = True) -> Planned:
        """The plan of one pass; without ``review`` (planning a host this is not: its store
        is elsewhere), nothing is said of retention."""
        inputs = self.read_inputs()
        want = self.desire(inputs)
        actual = self.observe(want)
        retained = self.review(inputs, want, actual) if review else None
        made = plan.diff(want, actual, adopt=adopt, retained=retained,
                         build=self.settings.build)
        if self.settings.build is BuildPolicy.NEVER:
            made = plan.requests_instead(
                made, build_hosts=any(u.build_requests for u in self.settings.upstreams),
                down=actual.upstreams_down)
        return Planned(inputs, want, actual, made, retained, self.sources.ledger)
