"""Manifest models: what a ``Host`` and a ``DriverBuild`` document may say.

The YAML keys are those of docs/manifests.md (camelCase); the Python names are
snake_case. Every model is
frozen and forbids unknown keys. ``manifests.loading`` validates documents with
``by_name=False`` so a manifest must spell the camelCase key (``driverVersion``), while
code may build models with either spelling.

Deliberate choices:

* ``falco.env`` values must be strings, as in a Kubernetes pod spec: ``DEBUG: 1`` is
  rejected ("quote it") instead of silently becoming ``"1"``, because YAML would also turn
  ``yes`` into ``True`` and ``1.10`` into ``1.1``.
* ``kernelVersion`` may be written as a bare integer (``kernelVersion: 1``): driverkit's own
  configs do, and a ``uname -v`` build number has no other reading.
* ``match.hostnames: []`` matches no host; an omitted ``match`` matches every host.
* Cross-document rules (unique names, a known driver version for the Falco release, the
  driver mode a release supports, the env keys the reconciler sets itself) live in
  ``manifests.loading``; the driverkit rules on a build live in ``manifests.driverkit``.

Every string is held to the grammar of the place it goes: ``manifests.grammar``.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
from typing import Annotated, Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from pydantic.dataclasses import dataclass

from reconciler.manifests import driverkit
from reconciler.manifests.grammar import (
    ContainerName,
    DriverVersion,
    Env,
    FalcoRelease,
    Glob,
    ImageRef,
    KernelRelease,
    KernelTarget,
    KernelUrl,
    KernelVersion,
    KeyName,
    Name,
    NetworkName,
    NewestKernel,
    Port,
    check,
    falco_version,
    kernel_arch,
    union_tag,
)
from reconciler.model import generations, versions
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId, store_arch

# Re-exported: the manifests speak of them, and loading checks a Host's mode.
from reconciler.model.modes import DriverMode as DriverMode  # noqa: PLC0414 - re-export
from reconciler.model.modes import PullPolicy as PullPolicy  # noqa: PLC0414 - re-export

API_VERSION = "falco-reconciler/v1"
DEFAULT_WEBSERVER_PORT = 8765  # Falco's own default, in every release
_STORE_ARCH = {arch: store_arch(arch) for arch in ("amd64", "arm64")}

# Unknown keys are errors; code may use the Python names, manifests must use the YAML ones
# (loading validates with by_name=False).
_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


class _Document:
    """What every manifest part shares: validation of plain data (a parsed YAML mapping).

    The parts are pydantic dataclasses with slots, not ``BaseModel``s: a fleet's
    repository holds tens of thousands of documents, and a model instance carries a
    ``__dict__`` and a set of the fields given, seven times the memory of the slotted
    instance (2.1 KB against 0.3 KB per DriverBuild), which a plan paid for in time too.
    """

    __slots__ = ()
    __pydantic_validator__: ClassVar[Any]

    @classmethod
    def model_validate(cls, data: Any, *, by_name: bool | None = None) -> Self:
        """``data`` validated into this part (raises ``pydantic.ValidationError``)."""
        validated: Self = cls.__pydantic_validator__.validate_python(data, by_name=by_name)
        return validated


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Match(_Document):
    """Which hosts a document applies to: fnmatch globs on the host name."""

    hostnames: tuple[Glob, ...] | None = None

    def matches(self, hostname: str) -> bool:
        """True for every host when ``hostnames`` is omitted; globs ignore case."""
        if self.hostnames is None:
            return True
        name = hostname.lower()
        return any(glob_match(name, glob.lower()) for glob in self.hostnames)


def glob_match(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase``, without compiling a regex for the usual ``*``-only globs.

    ``host_for`` tries thousands of distinct globs once each; fnmatch would compile (and
    cache, up to a limit) a regex for every one, which costs far more than the match.
    """
    if "[" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    if "*" not in pattern:
        return name == pattern
    parts = pattern.split("*")
    head, tail = parts[0], parts[-1]
    if len(name) < len(head) + len(tail) or not name.startswith(head) or not name.endswith(
            tail):
        return False
    position, end = len(head), len(name) - len(tail)
    for part in parts[1:-1]:
        found = name.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class FalcoSpec(_Document):
    version: FalcoRelease
    image: ImageRef = "docker.io/falcosecurity/falco"
    # Names a folder of the driver store, as a DriverBuild's driverVersion does.
    driver_version: DriverVersion | None = Field(default=None, alias="driverVersion")
    driver: DriverMode = DriverMode.KMOD
    container_name: ContainerName = Field(default="falco", alias="containerName")
    env: Env = Field(default_factory=dict)
    network: NetworkName = "host"
    pull: PullPolicy = PullPolicy.MISSING
    adopt: bool = False
    # Falco 0.40+: the image run to completion before Falco to load its driver; without a
    # tag or digest it gets Falco's.
    driver_loader_image: ImageRef = Field(default=generations.DEFAULT_LOADER_IMAGE,
                                          alias="driverLoaderImage")
    # Where this image's Falco web server listens (falco.yaml's webserver.listen_port, on
    # in every release): a (re)start waits for its /healthz. None: the image has it off,
    # and readiness is the settle time alone.
    webserver_port: Port | None = Field(default=DEFAULT_WEBSERVER_PORT, alias="webserverPort")

    def resolved_driver_version(self) -> str:
        """The driver version this Falco loads (raises ``UnknownDriverVersion``)."""
        if self.driver_version:
            return self.driver_version
        known = versions.known_driver_version(self.falco_version)
        if known is None:
            return versions.driver_version(self.version)  # raises UnknownDriverVersion
        return known

    @property
    def falco_version(self) -> versions.FalcoVersion:
        return falco_version(self.version)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class KernelSpec(_Document):
    """A kernel to prebuild for, named as the host's Falco loader names it."""

    target: KernelTarget
    kernel_release: KernelRelease = Field(alias="kernelRelease")
    kernel_version: KernelVersion = Field(alias="kernelVersion")
    # x86_64/aarch64 are accepted and normalised to driverkit's amd64/arm64.
    architecture: Annotated[str, AfterValidator(kernel_arch)] = "amd64"

    def kernel_id(self) -> KernelId:
        return KernelId(
            self.target, self.kernel_release, self.kernel_version, store_arch(self.architecture)
        )


class KernelSelection(enum.StrEnum):
    """The kernels a Host's driver is built for, when ``kernels`` names none itself."""

    INSTALLED = "installed"  # every kernel installed on the host, the running one first
    RUNNING = "running"  # the running kernel only


def _kernel_selection(value: Any) -> Any:
    choices = [s.value for s in KernelSelection]
    if value in choices:
        return value
    hint = driverkit.did_you_mean(value, choices) if isinstance(value, str) else ""
    raise ValueError(
        f"expected installed, running or a list of kernels, got {driverkit.quoted(value)}{hint}")


def _kernels_form(value: Any) -> str:
    return union_tag("list") if isinstance(value, list | tuple) else union_tag("word")


# ``installed`` | ``running`` | a list of kernels, each form validated on its own (a
# tagged union: a mistake in one list item is reported as that item's, not as "not a word
# either").
Kernels = Annotated[
    Annotated[KernelSelection, BeforeValidator(_kernel_selection), Tag(union_tag("word"))]
    | Annotated[tuple[KernelSpec, ...], Tag(union_tag("list"))],
    Discriminator(_kernels_form),
]


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class SigningSpec(_Document):
    """Sign the kernel modules with this key of the build host's keyring (``signing_keys``:
    an enrolled MOK, say), by name only: for hosts that refuse unsigned modules. Probes are
    not signed."""

    key: KeyName


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class HostSpec(_Document):
    match: Match = Match()
    falco: FalcoSpec
    # A list means the running kernel and those listed (the kernels the host's facts
    # cannot tell, such as one a rollout will install).
    kernels: Kernels = Field(
        default=KernelSelection.INSTALLED,
        description="installed: every installed kernel; running: the running one only; a "
                    "list: the running kernel and those listed")
    signing: SigningSpec | None = None  # for its modules: every kernel's

    @property
    def listed_kernels(self) -> tuple[KernelSpec, ...]:
        """The kernels written out in the manifest (none for ``installed``/``running``)."""
        return () if isinstance(self.kernels, KernelSelection) else self.kernels

    @property
    def wants_installed(self) -> bool:
        """Whether every installed kernel gets the driver, not only the running one."""
        return self.kernels is KernelSelection.INSTALLED


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Metadata(_Document):
    name: Name


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class Host(_Document):
    api_version: Literal["falco-reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["Host"]
    metadata: Metadata
    spec: HostSpec


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class DriverBuildSpec(_Document):
    """An explicit build request; driverkit's validation rules apply (see manifests.driverkit)."""

    match: Match | None = None
    target: Annotated[str, AfterValidator(check(driverkit.target_problem))]
    driver_version: DriverVersion = Field(alias="driverVersion")
    # One of the two: a release, or the newest of a series and flavour that the build host's
    # apt lists offer (resolved when planning: plan.planner).
    kernel_release: KernelRelease = Field(default="", alias="kernelRelease")
    newest_kernel: NewestKernel | None = Field(default=None, alias="newestKernel")
    # The kernel's own ``uname -r`` where ``kernelRelease`` is the name a loader asks for
    # (Falco 0.35+ on Debian: 6.1.192-3-cloud-amd64 for 6.1.0-57-cloud-amd64): the headers
    # and the module's vermagic are the real release's.
    uname_release: KernelRelease = Field(default="", alias="unameRelease")
    # Omitted, it is driverkit's "1", but ubuntu targets must say it: the rules below set
    # the "1" and must know it was omitted. An empty string is never valid input, so it
    # marks "not written".
    kernel_version: KernelVersion = Field(
        default="", alias="kernelVersion", json_schema_extra={"default": "1"})
    architecture: Literal["amd64", "arm64"] = "amd64"
    outputs: tuple[DriverKind, ...] = Field(default=(DriverKind.KMOD,), min_length=1)
    kernel_urls: tuple[KernelUrl, ...] = Field(default=(), alias="kernelUrls")
    # Needed by driverkit's vanilla, minikube and flatcar targets (base64 kernel .config).
    kernel_config_data: str | None = Field(default=None, alias="kernelConfigData")
    signing: SigningSpec | None = None  # sign its module (kmod) with this key

    @model_validator(mode="after")
    def _driverkit_rules(self) -> Self:
        given = self.kernel_version != ""
        if not given:
            object.__setattr__(self, "kernel_version", "1")  # frozen: set once, here
        if not (
            self.target.startswith("ubuntu")
            or self.kernel_config_data
            or self.target in driverkit.NEEDS_KERNEL_CONFIG
        ):
            return self  # the common case, without a call
        problems = driverkit.spec_problems(
            target=self.target,
            kernel_version_given=given,
            kernel_config_data=self.kernel_config_data,
        )
        if problems:
            raise ValueError("; ".join(message for _key, message in problems))
        return self

    def artifact_keys(self, release: str = "") -> tuple[ArtifactKey, ...]:
        """One key per output kind, duplicates dropped, in the order written; for a
        ``newestKernel`` build, of the ``release`` it resolved to (none before)."""
        # Called for every build on every pass (tens of thousands): build the keys directly.
        release = release or self.kernel_release
        if not release:
            return ()
        arch = _STORE_ARCH[self.architecture]
        if len(self.outputs) == 1:
            return (ArtifactKey(self.driver_version, arch, self.target, release,
                                self.kernel_version, self.outputs[0]),)
        return tuple(
            ArtifactKey(self.driver_version, arch, self.target, release,
                        self.kernel_version, kind)
            for kind in dict.fromkeys(self.outputs)
        )


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class DriverBuild(_Document):
    api_version: Literal["falco-reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["DriverBuild"]
    metadata: Metadata
    spec: DriverBuildSpec


T = TypeVar("T")


class Origin(NamedTuple):
    """Where a document came from: its file (relative to the manifest root), its 0-based
    index among the file's documents, and the 1-based line of its ``---`` (1 for a first
    document without one)."""

    file: str
    document: int
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Located(NamedTuple, Generic[T]):
    """A valid document and where it came from (named tuples, one per document)."""

    value: T
    origin: Origin


@dataclasses.dataclass(frozen=True)
class ManifestSet:
    """Every valid document at one revision, in file-path order then document order."""

    hosts: tuple[Located[Host], ...] = ()
    builds: tuple[Located[DriverBuild], ...] = ()
    # At most one (manifests.loading); typed loosely here so models need not import it.
    rollouts: tuple[Located[Any], ...] = ()

    def same_for(self, other: ManifestSet, hostname: str) -> bool:
        """Whether both sets want the same of ``hostname`` (its Host, its builds): a
        revision that changes nothing this host runs needs no rollout wave."""
        mine, theirs = self.host_for(hostname), other.host_for(hostname)
        if (mine and mine.value) != (theirs and theirs.value):
            return False
        return [b.value for b in self.builds_for(hostname)] == [
            b.value for b in other.builds_for(hostname)]

    def host_for(self, hostname: str) -> Located[Host] | None:
        """The first Host whose ``match`` fits, or None: that host runs no Falco."""
        for located in self.hosts:
            if located.value.spec.match.matches(hostname):
                return located
        return None

    def builds_for(self, hostname: str) -> tuple[Located[DriverBuild], ...]:
        """The DriverBuilds this host builds: those without ``match`` and those that fit."""
        return tuple(
            b for b in self.builds if b.value.spec.match is None or b.value.spec.match.matches(
                hostname)
        )
