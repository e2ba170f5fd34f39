"""The plan: the pure difference between desired and observed state.

A plan is data: it can be printed, serialised (``to_json``, the README's JSON contract) and
applied. Applying every change of a plan to the state it was made from leaves a state
whose plan is empty (tests/plan/test_diff/test_converges_property.py checks that with hypothesis).

A wanted artifact the store lacks is fetched when an upstream has it (``+ fetch <path>
from <upstream>``, the observed offers in upstream order), else built; with ``build:
always`` upstreams are never asked (``model.upstreams.BuildPolicy``). A module wanted
signed is always built: no upstream signs with our key. A host that does not build
(``build: never``) asks its build hosts for what no upstream has: those builds become
requests (``requests_instead``), in the same place of the order, or, with no upstream
that takes requests, are reported blocked.

Ordering matters to the executor: fetches, builds and requests come first (Falco must
never start before its driver exists), then the kernel module (kmod-preloaded), then
container changes, then deletions: corrupt artifacts no one wants, and those past their
retention (``plan.retention``, whose kept artifacts the notes list with their date).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from reconciler.desired.state import DesiredArtifact, DesiredContainer, DesiredState
from reconciler.loadtest import compat
from reconciler.model import versions
from reconciler.model.artifacts import APT_HEADER_TARGETS, ArtifactKey
from reconciler.model.container import ContainerSpec
from reconciler.model.modes import DriverMode, PullPolicy
from reconciler.model.observations import ObservedContainer, ObservedImage
from reconciler.model.offers import Offer
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe.state import ObservedState
from reconciler.plan.retention import Review, span, when


class ChangeKind(enum.StrEnum):
    DRIVER = "driver"
    CONTAINER = "container"


class Op(enum.StrEnum):
    FETCH = "fetch"
    BUILD = "build"
    REQUEST = "request"  # ask a build host to build it (this host does not build)
    DELETE = "delete"
    CREATE = "create"
    REPLACE = "replace"
    REMOVE = "remove"

    @property
    def symbol(self) -> str:
        return {"fetch": "+", "build": "+", "request": "+", "create": "+", "replace": "~",
                "delete": "-", "remove": "-"}[self.value]


class Reason(enum.StrEnum):
    MISSING = "missing from the store"
    CORRUPT = "checksum does not verify; rebuild"
    MISFIT = "its driver identity does not fit its driver version; rebuild"
    UNSIGNED = "not signed as wanted; rebuild"
    UNSAFE_PATH = "blocked: a store folder on its path is a symlink, never followed"
    UNAVAILABLE = "blocked: no upstream has it and this host does not build"
    # As UNAVAILABLE, but an upstream could not be asked: it may have it once it answers.
    UPSTREAM_DOWN = "blocked: no upstream that answered has it and this host does not build"
    NO_HEADERS = "cannot be built: no source of this kernel's headers"
    UNWANTED_CORRUPT = "corrupt or unverifiable and no longer wanted"
    EXPIRED = "no Host, DriverBuild or installed kernel wants it any more, past its retention"
    ABSENT = "container does not exist"
    NOT_RUNNING = "container is not running"
    SPEC_CHANGED = "container spec changed"
    FOREIGN = "a container with this name was not created by falco-reconciler"
    IMAGE_MOVED = "the image tag moved (pull: always)"
    LOADER_RUN = "the driver loader runs to completion before Falco (re)starts"
    MODULE_MISSING = "kmod-preloaded: the kernel module is not loaded"
    MODULE_MISMATCH = "kmod-preloaded: another version of the kernel module is loaded"
    NO_HOST = "no Host manifest matches this host"
    RENAMED = "the Host now names its container differently"


class Change(NamedTuple):
    """One line of a plan. A named tuple, like the other values a large plan makes by
    the ten thousand (artifact keys, desired artifacts): one allocation each, where a
    frozen dataclass set its nine fields one at a time."""

    kind: ChangeKind
    op: Op
    name: str  # store relpath or container name
    reason: Reason
    detail: str = ""
    artifact: ArtifactKey | None = None
    spec: ContainerSpec | None = None  # the container to run after the change
    replaces: str | None = None  # id of the container that goes away
    needs_adopt: bool = False  # replaces a container we did not create
    offers: tuple[Offer, ...] = ()  # a fetch: the upstreams that have it, in order

    @property
    def source(self) -> str | None:
        """The upstream a fetch asks first."""
        return self.offers[0].upstream if self.offers else None

    @property
    def reason_text(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value

    def to_json(self) -> dict[str, str]:
        found = {
            "kind": self.kind.value, "op": self.op.value, "name": self.name,
            "reason": self.reason_text,
        }
        if self.offers:
            found["from"] = self.offers[0].upstream
            found["trust"] = self.offers[0].trust.value
        return found


@dataclass(frozen=True)
class Plan:
    revision: str
    host: str
    changes: tuple[Change, ...]
    manifest_host: str | None = None  # the Host manifest that matched
    notes: tuple[str, ...] = ()  # observed facts the text form shows (not in the JSON)
    # What retention keeps a while longer: shown after the changes (not in the JSON).
    retention: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "host": self.host,
            "changes": [c.to_json() for c in self.changes],
        }


def _describe_status(found: ObservedContainer) -> str:
    if found.status == "exited" and found.exit_code is not None:
        return f"{found.status} (exit code {found.exit_code})"
    return found.status


def _spec_drift(want: ContainerSpec, found: ObservedContainer) -> str:
    """Why a container that carries our labels no longer matches, or '' if it does."""
    if found.spec_hash != want.spec_hash:
        return "spec hash differs from the manifest's"
    if found.image != want.image:
        return f"image is {found.image}, want {want.image}"
    actual = dict(found.env)
    changed = sorted(k for k, v in want.env if actual.get(k) != v)
    if changed:
        return "env " + ", ".join(changed) + " differs"
    if found.restart_policy and found.restart_policy != want.restart_policy:
        return f"restart policy is {found.restart_policy}, want {want.restart_policy}"
    if found.privileged != want.privileged:
        return f"privileged is {found.privileged}, want {want.privileged}"
    return ""


def _container_changes(
    want: DesiredContainer | None, observed: ObservedState, *, adopt: bool
) -> list[Change]:
    changes: list[Change] = []
    wanted_name = want.spec.name if want else None
    for other in observed.containers:
        if other.managed and other.name != wanted_name:
            reason = Reason.RENAMED if want else Reason.NO_HOST
            changes.append(Change(ChangeKind.CONTAINER, Op.REMOVE, other.name, reason,
                                  replaces=other.id))
    if want is None or want.blocked is not None:
        return changes
    spec = want.spec
    found = observed.named(spec.name)
    if found is None:
        changes.append(Change(ChangeKind.CONTAINER, Op.CREATE, spec.name, Reason.ABSENT, spec=spec,
                              artifact=want.artifact))
    elif not found.managed:
        allowed = adopt or want.adopt
        detail = "adopting it" if allowed else "set falco.adopt: true or pass --adopt to replace it"
        changes.append(Change(ChangeKind.CONTAINER, Op.REPLACE, spec.name, Reason.FOREIGN,
                              detail=detail, spec=spec, replaces=found.id,
                              artifact=want.artifact, needs_adopt=not allowed))
    elif drift := _spec_drift(spec, found):
        changes.append(Change(ChangeKind.CONTAINER, Op.REPLACE, spec.name, Reason.SPEC_CHANGED,
                              detail=drift, spec=spec, replaces=found.id, artifact=want.artifact))
    elif not found.running:
        changes.append(Change(ChangeKind.CONTAINER, Op.REPLACE, spec.name, Reason.NOT_RUNNING,
                              detail=_describe_status(found), spec=spec, replaces=found.id,
                              artifact=want.artifact))
    elif moved := _image_moved(want, found, observed.image):
        changes.append(Change(ChangeKind.CONTAINER, Op.REPLACE, spec.name, Reason.IMAGE_MOVED,
                              detail=moved, spec=spec, replaces=found.id,
                              artifact=want.artifact))
    return changes


def _image_moved(
    want: DesiredContainer, found: ObservedContainer, image: ObservedImage | None
) -> str:
    """With ``pull: always``: the registry serves a new image for the tag, or one was
    pulled and the container still runs the old one."""
    if want.pull is not PullPolicy.ALWAYS or image is None or image.ref != want.spec.image:
        return ""
    if image.tag_moved:
        return f"the registry now serves {image.remote_digest}"
    if image.local_id and found.image_id and image.local_id != found.image_id:
        return f"the container runs {found.image_id[:19]}, the tag is {image.local_id[:19]}"
    return ""


def _module_changes(want: DesiredContainer | None, observed: ObservedState) -> list[Change]:
    """Insert (or swap) the kernel module a kmod-preloaded Falco will use."""
    if want is None or want.mode is not DriverMode.KMOD_PRELOADED or want.artifact is None:
        return []
    key, loaded = want.artifact, observed.module
    if loaded is None:
        return [Change(ChangeKind.DRIVER, Op.CREATE, key.relpath, Reason.MODULE_MISSING,
                       detail="insert it", artifact=key)]
    # The version the module itself declares: a Debian package's build says its libs
    # release, not the driver version its folder is named by.
    wanted = observed.module_file_version or key.driver_version
    if loaded.version != wanted:
        return [Change(ChangeKind.DRIVER, Op.REPLACE, key.relpath, Reason.MODULE_MISMATCH,
                       detail=f"{loaded.name} {loaded.version or '(no version)'} is loaded, "
                       f"want {wanted}", artifact=key)]
    return []


def _with_loader_runs(changes: list[Change]) -> list[Change]:
    """Before each (re)start of a Falco that needs its driver-loader run (0.40+), the run
    as its own step: it loads the driver Falco will open, from our server."""
    out: list[Change] = []
    for change in changes:
        loader = change.spec.loader if change.spec is not None else None
        if loader is not None and change.op in (Op.CREATE, Op.REPLACE):
            what = change.artifact.relpath if change.artifact else "the driver"
            out.append(Change(
                ChangeKind.CONTAINER, Op.CREATE, loader.name, Reason.LOADER_RUN,
                detail=f"{loader.image} {' '.join(loader.args)} loads {what} from our server",
                artifact=change.artifact, spec=change.spec, needs_adopt=change.needs_adopt))
        out.append(change)
    return out


def _retention_notes(retained: Review | None) -> list[str]:
    if retained is None:
        return []
    found = [f"{key.relpath}: kept, the drivers of the previous kernel {release}"
             for key, release in retained.previous]
    found += [f"{key.relpath}: no longer wanted; kept until {when(until)} "
              f"(retention {span(retained.grace)})" for key, until in retained.kept]
    return found


def notes(desired: DesiredState, observed: ObservedState) -> tuple[str, ...]:
    """Facts worth showing beside the changes (the text form prints them)."""
    found: list[str] = list(desired.notes)
    want = desired.container
    if want is not None and want.blocked is not None:
        found.append(want.blocked)
    if want is not None and want.mode is DriverMode.EBPF and versions.legacy_ebpf_deprecated(
            versions.FalcoVersion.parse(want.falco_version)):
        found.append(f"warning: the legacy eBPF probe is deprecated in Falco "
                     f"{want.falco_version} and removed in 0.44: move to modern_ebpf or kmod")
    found += observed.upstream_notes
    for key, libs, reasons in observed.unreadable:
        if want is not None and key == want.artifact and compat.tells_of_falco(
                want.falco_version, str(key.kind), libs, reasons):
            found.append(f"warning: {key.relpath}: the driver loads; Falco "
                         f"{want.falco_version}'s userspace cannot read it on this kernel: "
                         f"{reasons[0]} (tested with libs {libs})")
    if observed.module is not None:
        found.append(f"kernel module {observed.module.name} "
                     f"{observed.module.version or '(no version)'} is loaded")
    return tuple(found)


def _has_headers(artifact: DesiredArtifact) -> bool:
    return bool(artifact.kernel_urls) or artifact.key.target in APT_HEADER_TARGETS


def _no_headers(artifact: DesiredArtifact) -> str:
    key = artifact.key
    return (f"a {key.target} kernel's headers are found only through kernelUrls (apt "
            f"finds them for {', '.join(sorted(APT_HEADER_TARGETS))} kernels only): list "
            f"the header packages of {key.kernel_release} in a DriverBuild's kernelUrls, or "
            f"serve the driver from an upstream; wanted by {', '.join(artifact.wanted_by)}")


def _source(change: Change, offers: tuple[Offer, ...], build: BuildPolicy) -> Change:
    """A missing artifact's change: fetched from its offers, or built (a host that does
    not build turns its builds into requests after: ``requests_instead``)."""
    if offers and build is not BuildPolicy.ALWAYS:
        later = ", ".join(o.upstream for o in offers[1:])
        detail = f"{change.detail}; then {later}" if later else change.detail
        return change._replace(op=Op.FETCH, detail=detail, offers=offers)
    return change


def requests_instead(plan: Plan, *, build_hosts: bool = True,
                     down: tuple[str, ...] = ()) -> Plan:
    """The plan of a host that does not build: each build is a request to a build host,
    or, without ``build_hosts`` (no upstream takes requests), blocked: nothing can make
    it here; while upstreams are ``down``, blocked until they answer again. One blocked by
    an unsafe store path stays a build, which reports it."""
    if not any(c.op is Op.BUILD for c in plan.changes):
        return plan

    def instead(change: Change) -> Change:
        if change.op is not Op.BUILD or change.reason in (Reason.UNSAFE_PATH,
                                                           Reason.NO_HEADERS):
            return change
        if build_hosts:
            return change._replace(op=Op.REQUEST)
        was = "" if change.reason is Reason.MISSING else f"{change.reason.value}; "
        if down:
            return change._replace(reason=Reason.UPSTREAM_DOWN, detail=(
                f"{', '.join(down)} not reachable; {was}{change.detail}"))
        return change._replace(reason=Reason.UNAVAILABLE, detail=was + change.detail)

    return replace(plan, changes=tuple(instead(c) for c in plan.changes))


def diff(desired: DesiredState, observed: ObservedState, *, adopt: bool = False,
         retained: Review | None = None, build: BuildPolicy = BuildPolicy.MISSING) -> Plan:
    """Every change that turns ``observed`` into ``desired``: fetches and builds,
    containers, deletions (with ``retained``, also of what is past its retention)."""
    builds = []
    offered = dict(observed.offers)
    unsafe = dict(observed.unsafe)
    misfits = dict(observed.misfits)
    unsigned = dict(observed.unsigned)
    held_back = dict(observed.held_back)
    for artifact in desired.artifacts:
        if artifact.key in observed.present:
            continue
        if artifact.key in unsafe:
            builds.append(Change(ChangeKind.DRIVER, Op.BUILD, artifact.key.relpath,
                                 Reason.UNSAFE_PATH,
                                 detail=f"{unsafe[artifact.key]}/ in the store; remove it",
                                 artifact=artifact.key))
            continue
        reason = Reason.CORRUPT if artifact.key in observed.corrupt else Reason.MISSING
        detail = ", ".join(artifact.wanted_by)
        if artifact.key in misfits:
            reason, detail = Reason.MISFIT, f"{misfits[artifact.key]}; {detail}"
        elif artifact.key in unsigned:
            reason, detail = Reason.UNSIGNED, f"{unsigned[artifact.key]}; {detail}"
        if artifact.key in held_back:
            detail = f"{detail}; held back by its load test before: {held_back[artifact.key]}"
        change = _source(Change(ChangeKind.DRIVER, Op.BUILD, artifact.key.relpath, reason,
                                detail=detail, artifact=artifact.key),
                         offered.get(artifact.key, ()), build)
        if change.op is Op.BUILD and not _has_headers(artifact):
            change = change._replace(reason=Reason.NO_HEADERS, detail=_no_headers(artifact))
        builds.append(change)
    wanted = {a.key for a in desired.artifacts}
    deletes = [
        Change(ChangeKind.DRIVER, Op.DELETE, key.relpath, Reason.UNWANTED_CORRUPT, artifact=key)
        for key in sorted(observed.corrupt - wanted)
    ]
    if retained is not None:
        corrupt = {key.relpath for key in observed.corrupt}
        deletes += [
            Change(ChangeKind.DRIVER, Op.DELETE, key.relpath, Reason.EXPIRED,
                   detail=f"unwanted since {when(since)}, retention {span(retained.grace)}",
                   artifact=key)
            for key, since in retained.expired if key.relpath not in corrupt
        ]
    modules = _module_changes(desired.container, observed)
    containers = _with_loader_runs(_container_changes(desired.container, observed, adopt=adopt))
    return Plan(
        revision=desired.revision,
        host=desired.hostname,
        changes=(*builds, *modules, *containers, *deletes),
        manifest_host=desired.host,
        notes=notes(desired, observed),
        retention=tuple(_retention_notes(retained)),
    )
