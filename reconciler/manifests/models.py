"""Manifest models: what a ``Host`` and a ``DriverBuild`` document may say.

The YAML keys are those of docs/manifests.md (camelCase); the Python names are
snake_case. Every model is
frozen and forbids unknown keys. ``reconciler.loading`` validates documents with
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
  ``reconciler.loading``; the driverkit rules on a build live in ``reconciler.driverkit``.

Every string is held to the grammar of the place it goes (docs/manifest-limits.md): the
parts of a store path (a folder or file name: no ``/``, no ``..``, no control characters,
bounded), Docker's container names, image references and network names, the environment
strings ``execve`` takes, and the URLs a builder downloads. More people can push to the
manifest repository than can log in to a host, and the daemon acts as root, so a value
that fits no such place is refused when it is read, never trimmed or escaped later. The
checks are ``StringConstraints`` patterns where they can be, which pydantic-core runs in
Rust (linear-time regexes, no lookaround), so a plan over tens of thousands of documents
pays almost nothing for them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.dataclasses import dataclass

from reconciler.manifests import driverkit
from reconciler.model import versions
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId, manifest_arch, store_arch

# Re-exported: the manifests speak of them, and loading checks a Host's mode.
from reconciler.model.modes import DriverMode as DriverMode  # noqa: PLC0414 - re-export
from reconciler.model.modes import PullPolicy as PullPolicy  # noqa: PLC0414 - re-export

API_VERSION = "falco-reconciler/v1"
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


def _number_to_str(value: Any) -> Any:
    """``kernelVersion: 1`` -> ``"1"`` (integers only: a float or a bool is a mistake)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check(rule: Callable[[str], str | None]) -> Callable[[str], str]:
    """Turn a ``rule(value) -> message | None`` into a pydantic after-validator."""

    def validate(value: str) -> str:
        message = rule(value)
        if message is not None:
            raise ValueError(message)
        return value

    return validate


# -- the grammar of each place a value goes -------------------------------------------------

# utsname's fields are 65 bytes with their NUL (__NEW_UTS_LEN): no kernel has a longer
# `uname -r`, nor a longer `uname -v` to take a kernel version from.
MAX_KERNEL_RELEASE = 64
MAX_KERNEL_VERSION = 64
MAX_TARGET = driverkit.MAX_TARGET
# Docker sets no length; ours keeps the container's name and the name a replace sets the
# old container aside under (``<name>-previous-<8 hex>``, 18 more) within a DNS label (63),
# which is how containers on a user-defined network find each other.
SET_ASIDE_SUFFIX = len("-previous-") + 8
MAX_CONTAINER_NAME = 63 - SET_ASIDE_SUFFIX
MAX_NETWORK_NAME = 64  # Docker sets none either; real names are short words
MAX_IMAGE_NAME = 255  # Docker's NameTotalLengthMax: the name, without tag or digest
MAX_TAG = 128  # Docker's tag grammar: [\w][\w.-]{0,127}
MAX_URL = 2048  # what browsers and proxies reliably pass; a package URL is far shorter
# Linux's MAX_ARG_STRLEN: one environment string, ``KEY=value`` and its NUL, in bytes.
MAX_ENV_STRING = 131072
MAX_NAME = 253
MAX_GLOB = 253  # a glob on host names: a DNS name is at most 253 characters

# A store name part: a single folder or file name component. Letters, digits and what
# kernel releases use (``.``, ``_``, ``+``, ``~``, ``-``), a letter or digit first, never
# ``..``; each ``.`` must be followed by another character or end the part.
_PART = r"(?:\.?[A-Za-z0-9_+~-])*\.?"
_RELEASE = rf"^[A-Za-z0-9]{_PART}$"
# As the loaders reduce `uname -v`: 1, 26~22.04.1, 1_1.26.0, 1_1.11.1-aws, 1_v1.4.5, 1-photon.
_KERNEL_VERSION = rf"^[0-9]{_PART}$"
# A distro as Falco's loaders name it: os-release's ID (lower case, 0-9, a-z, ".", "_", "-")
# or ubuntu-<flavor> (checked further by driverkit.ubuntu_target_problem).
_TARGET = r"^[a-z0-9](?:\.?[a-z0-9_-])*$"
_CONTAINER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"  # Docker's own rule
_NETWORK_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
# A first component is a domain only when it has a ``.`` or a port or is localhost, as
# Docker decides; path components are lower case with ``.``, ``_``, ``__`` or dashes between.
_DOMAIN_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = (rf"(?:(?:localhost|{_DOMAIN_PART}(?:\.{_DOMAIN_PART})+|\[[0-9A-Fa-f:]+\])"
           rf"(?::[0-9]+)?|{_DOMAIN_PART}:[0-9]+)")
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = (rf"^(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*"
          r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
          r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")
_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
_ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
# http(s), a host (a DNS name, an IPv4 address or a bracketed IPv6 one), an optional port,
# then printable ASCII only: no spaces, no control characters. (No inline flags: the
# pattern is also in the JSON Schema, whose regexes have none.)
_URL = (r"^[hH][tT][tT][pP][sS]?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
        r"(?::[0-9]{1,5})?(?:[/?#][\x21-\x7e]*)?$")
_NAME = r"^[^\s\x00-\x1f\x7f-\x9f]+$"

# Checked in pydantic-core (Rust), not in Python: these run once per document.
Glob = Annotated[str, StringConstraints(pattern=r"\S", max_length=MAX_GLOB)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=_NAME)]
KernelRelease = Annotated[
    str, StringConstraints(pattern=_RELEASE, max_length=MAX_KERNEL_RELEASE)]
KernelUrl = Annotated[str, StringConstraints(pattern=_URL, max_length=MAX_URL)]
ContainerName = Annotated[
    str, StringConstraints(pattern=_CONTAINER_NAME, max_length=MAX_CONTAINER_NAME)]
EnvKey = Annotated[str, StringConstraints(pattern=_ENV_KEY)]

# What a failed pattern or length means, by key, for loading's messages: what is expected.
PATTERN_MEANING = {
    "name": f"must be non-empty with no spaces, at most {MAX_NAME} characters",
    "kernelRelease": "expected the kernel's `uname -r` (ASCII, no spaces), "
    "e.g. 5.10.0-14-cloud-amd64",
    "kernelVersion": (
        "expected a kernel version as Falco's loaders take it from `uname -v` (1, 26~22.04.1, "
        "1_1.26.0, 1_v1.4.5, 1-photon): a digit first, then letters, digits and . _ + ~ -, "
        f"no '..', at most {MAX_KERNEL_VERSION} characters"),
    "target": (
        "expected the distro as Falco's loader names it (os-release's ID such as debian, "
        "centos or amazonlinux2, or ubuntu-<flavor>): lower-case letters, digits and . _ -, "
        f"a letter or digit first, no '..', at most {MAX_TARGET} characters"),
    "version": (
        "must be a Falco release that is also the image tag (e.g. 0.37.1; "
        f"[A-Za-z0-9_][A-Za-z0-9_.-]*, at most {MAX_TAG} characters)"),
    "image": (
        "must be a Docker image reference ([registry[:port]/]path[:tag][@algorithm:hex], "
        f"lower-case path components, the name at most {MAX_IMAGE_NAME} characters, e.g. "
        "docker.io/falcosecurity/falco)"),
    "containerName": (
        "must be a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most "
        f"{MAX_CONTAINER_NAME} characters)"),
    "network": (
        "must be host, bridge or the name of a Docker network ([a-zA-Z0-9][a-zA-Z0-9_.-]*, "
        f"at most {MAX_NETWORK_NAME} characters; not none or default: Falco must reach the "
        "driver server)"),
    "env[key]": "keys must be environment variable names ([A-Za-z_][A-Za-z0-9_]*)",
    "kernelUrls": (
        "must be an http:// or https:// URL with a host, without spaces or control "
        f"characters, at most {MAX_URL} characters"),
    "hostnames": f"must be a non-blank host name glob of at most {MAX_GLOB} characters",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s")

# Said instead, for a value that fails for this reason.
_SPECIFIC_MEANING: dict[str, tuple[Callable[[str], bool], str]] = {
    "name": (lambda value: _CONTROL.search(value) is not None, (
        f"must be non-empty with no spaces or control characters, at most {MAX_NAME} "
        "characters")),
    "kernelRelease": (lambda value: value.isascii() and _SPACE.search(value) is None, (
        "expected the kernel's `uname -r`: letters, digits and . _ + ~ -, a letter or digit "
        f"first, no '..', at most {MAX_KERNEL_RELEASE} characters, e.g. "
        "5.10.0-14-cloud-amd64")),
    "kernelUrls": (lambda value: value[:5].lower() == "file:", (
        "must be an http:// or https:// URL: file:// is never taken from the repository "
        "(a local mirror is a setting of the host, not of the manifests)")),
}


def pattern_meaning(key: str, value: object) -> str:
    """What the value at ``key`` must be, said for the way ``value`` fails."""
    specific = _SPECIFIC_MEANING.get(key)
    if specific is not None and isinstance(value, str) and specific[0](value):
        return specific[1]
    return PATTERN_MEANING.get(key, "must not be empty")


# What the reconciler sets on Falco's container itself: the variables of the driver mode
# (reconciler.container.driver_env), the host root every loader reads, and falcoctl's
# whole FALCOCTL_* namespace (its settings: driver repositories, names, HTTP headers). A
# manifest's env may not name them (reconciler.loading says so): the driver a host loads
# would otherwise follow whatever a push says.
RECONCILER_ENV = frozenset({
    "DRIVERS_REPO", "HOST_ROOT", "SKIP_DRIVER_LOADER", "FALCO_BPF_PROBE",
    "FALCO_DRIVER_LOADER_OPTIONS",
})
RECONCILER_ENV_PREFIX = "FALCOCTL_"


def set_by_reconciler(key: str) -> bool:
    """Whether the reconciler sets this variable on Falco's container itself."""
    return key in RECONCILER_ENV or key.startswith(RECONCILER_ENV_PREFIX)


class KeyedError(ValueError):
    """A validator's problem with one entry of a mapping: ``key`` extends the error's
    location (pydantic places an after-validator's error at the mapping itself)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _env_rule(env: dict[str, str]) -> dict[str, str]:
    """Each ``KEY=value`` must be a string ``execve`` takes."""
    for key, value in env.items():
        if "\x00" in value:
            raise KeyedError(key, (
                f"an environment value cannot hold a NUL character, got "
                f"{driverkit.quoted(value)}"))
        # A character is at most 4 bytes: encode only the values that may be near the limit.
        if len(key) + 4 * len(value) + 2 > MAX_ENV_STRING:
            size = len(key) + len(value.encode()) + 2
            if size > MAX_ENV_STRING:
                raise KeyedError(key, (
                    f"{key}=<value> is {size} bytes with its NUL, over Linux's limit for one "
                    f"environment string ({MAX_ENV_STRING} bytes, MAX_ARG_STRLEN)"))
    return env


def _image_rule(value: str) -> str | None:
    """The name (domain and path, without tag or digest) is at most 255 characters."""
    name = value.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last) + last.index(":")]
    if len(name) > MAX_IMAGE_NAME:
        return f"{PATTERN_MEANING['image']}, got a name of {len(name)} characters"
    return None


def _network_rule(value: str) -> str | None:
    if value in ("none", "default"):
        return f"{PATTERN_MEANING['network']}, got {value!r}"
    return None


# The pattern's bound keeps the regex's input short; the name's own bound is _image_rule's.
ImageRef = Annotated[
    str, StringConstraints(pattern=_IMAGE, max_length=4 * MAX_IMAGE_NAME),
    AfterValidator(_check(_image_rule))]
NetworkName = Annotated[
    str, StringConstraints(pattern=_NETWORK_NAME, max_length=MAX_NETWORK_NAME),
    AfterValidator(_check(_network_rule))]


@lru_cache(maxsize=1024)
def _falco_version(text: str) -> versions.FalcoVersion:
    return versions.FalcoVersion.parse(text)


def _falco_version_rule(value: str) -> str | None:
    try:
        _falco_version(value)
    except ValueError as exc:
        return str(exc)
    return None


def _kernel_arch(value: str) -> str:
    try:
        return manifest_arch(value)
    except (KeyError, ValueError):
        raise ValueError(
            f"{value!r} is not a supported architecture: expected amd64 or arm64"
        ) from None


KernelVersion = Annotated[
    str, BeforeValidator(_number_to_str),
    StringConstraints(pattern=_KERNEL_VERSION, max_length=MAX_KERNEL_VERSION)]
# A Host's kernels name the distro as its Falco's loader does, not only driverkit's targets.
KernelTarget = Annotated[
    str, StringConstraints(pattern=_TARGET, max_length=MAX_TARGET),
    AfterValidator(_check(driverkit.ubuntu_target_problem))]
DriverVersion = Annotated[str, AfterValidator(_check(driverkit.driver_version_problem))]
# The version is also the image's default tag; the pattern runs first, so the release
# rule's cache only ever keeps short strings.
FalcoRelease = Annotated[
    str, StringConstraints(pattern=_TAG, max_length=MAX_TAG),
    AfterValidator(_check(_falco_version_rule))]
Env = Annotated[dict[EnvKey, str], AfterValidator(_env_rule)]


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
        return _falco_version(self.version)


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class KernelSpec(_Document):
    """A kernel to prebuild for, named as the host's Falco loader names it."""

    target: KernelTarget
    kernel_release: KernelRelease = Field(alias="kernelRelease")
    kernel_version: KernelVersion = Field(alias="kernelVersion")
    # x86_64/aarch64 are accepted and normalised to driverkit's amd64/arm64.
    architecture: Annotated[str, AfterValidator(_kernel_arch)] = "amd64"

    def kernel_id(self) -> KernelId:
        return KernelId(
            self.target, self.kernel_release, self.kernel_version, store_arch(self.architecture)
        )


@dataclass(frozen=True, slots=True, kw_only=True, config=_STRICT)
class HostSpec(_Document):
    match: Match = Match()
    falco: FalcoSpec
    kernels: tuple[KernelSpec, ...] = ()


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
    """An explicit build request; driverkit's validation rules apply (see reconciler.driverkit)."""

    match: Match | None = None
    target: Annotated[str, AfterValidator(_check(driverkit.target_problem))]
    driver_version: DriverVersion = Field(alias="driverVersion")
    kernel_release: KernelRelease = Field(alias="kernelRelease")
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

    def artifact_keys(self) -> tuple[ArtifactKey, ...]:
        """One key per output kind, duplicates dropped, in the order written."""
        # Called for every build on every pass (tens of thousands): build the keys directly.
        arch = _STORE_ARCH[self.architecture]
        if len(self.outputs) == 1:
            return (ArtifactKey(self.driver_version, arch, self.target, self.kernel_release,
                                self.kernel_version, self.outputs[0]),)
        return tuple(
            ArtifactKey(self.driver_version, arch, self.target, self.kernel_release,
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
