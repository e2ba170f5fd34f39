"""The grammar of each place a manifest value goes.

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

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from reconciler.errors import KeyedError
from reconciler.manifests import driverkit
from reconciler.model import generations, versions
from reconciler.model.artifacts import manifest_arch


def number_to_str(value: Any) -> Any:
    """``kernelVersion: 1`` -> ``"1"`` (integers only: a float or a bool is a mistake)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def check(rule: Callable[[str], str | None]) -> Callable[[str], str]:
    """Turn a ``rule(value) -> message | None`` into a pydantic after-validator."""

    def validate(value: str) -> str:
        message = rule(value)
        if message is not None:
            raise ValueError(message)
        return value

    return validate


def union_tag(name: str) -> str:
    """The tag of one member of a tagged union (``Discriminator``): pydantic puts it in an
    error's location, where it is no manifest key, so ``manifests.problems`` drops it."""
    return f"<{name}>"


def is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part.startswith("<") and part.endswith(">")


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
MAX_HOST_PATH = 4095  # Linux's PATH_MAX, without its NUL

# A store name part: a single folder or file name component. Letters, digits and what
# kernel releases use (``.``, ``_``, ``+``, ``~``, ``-``), a letter or digit first, never
# ``..``; each ``.`` must be followed by another character or end the part.
_PART = r"(?:\.?[A-Za-z0-9_+~-])*\.?"
_RELEASE = rf"^[A-Za-z0-9]{_PART}$"
# As the loaders reduce `uname -v`: 1, 26~22.04.1, 1_1.26.0, 1_1.11.1-aws, 1_v1.4.5, 1-photon.
_KERNEL_VERSION = rf"^[0-9]{_PART}$"
RELEASE_PATTERN, KERNEL_VERSION_PATTERN = _RELEASE, _KERNEL_VERSION  # for other checkers
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
# A file on the build host: absolute, printable, no empty, "." or ".." component.
# No ":" either: Docker's bind syntax (source:target:mode) could not mount it.
_PATH_CHAR = r"[^/:\x00-\x1f\x7f]"
_PATH_START = r"(?:[^/:\x00-\x1f\x7f.]|\.[^/:\x00-\x1f\x7f.]|\.\.[^/:\x00-\x1f\x7f])"
_HOST_PATH = rf"^(?:/{_PATH_START}{_PATH_CHAR}*)+$"

# Checked in pydantic-core (Rust), not in Python: these run once per document.
Glob = Annotated[str, StringConstraints(pattern=r"\S", max_length=MAX_GLOB)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=_NAME)]
KernelRelease = Annotated[
    str, StringConstraints(pattern=_RELEASE, max_length=MAX_KERNEL_RELEASE)]
# Debian's kernel ABI names with the ABI number as "*": 6.1.0-*-cloud-amd64.
_NEWEST_KERNEL = r"^[0-9]+\.[0-9]+\.[0-9]+-\*-[a-z0-9]+(?:-[a-z0-9]+)*$"
NewestKernel = Annotated[
    str, StringConstraints(pattern=_NEWEST_KERNEL, max_length=MAX_KERNEL_RELEASE)]
KernelUrl = Annotated[str, StringConstraints(pattern=_URL, max_length=MAX_URL)]
ContainerName = Annotated[
    str, StringConstraints(pattern=_CONTAINER_NAME, max_length=MAX_CONTAINER_NAME)]
EnvKey = Annotated[str, StringConstraints(pattern=_ENV_KEY)]
HostPath = Annotated[str, StringConstraints(pattern=_HOST_PATH, max_length=MAX_HOST_PATH)]
# A key of the build host's keyring, by name: never a path (a push must not read host files).
MAX_KEY_NAME = 64
KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                           max_length=MAX_KEY_NAME)]

# What a failed pattern or length means, by key, for loading's messages: what is expected.
PATTERN_MEANING = {
    "newestKernel": "expected a Debian kernel ABI name with its number as *, e.g. "
    "6.1.0-*-cloud-amd64",
    "name": f"must be non-empty with no spaces, at most {MAX_NAME} characters",
    "kernelRelease": "expected the kernel's `uname -r` (ASCII, no spaces), "
    "e.g. 5.10.0-14-cloud-amd64",
    "unameRelease": "expected the kernel's `uname -r` (ASCII, no spaces), "
    "e.g. 6.1.0-57-cloud-amd64",
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
    "key": (
        "must be the name of a signing key in the build host's keyring (its signing_keys "
        "setting: letters, digits and . _ -, a letter or digit first, at most "
        f"{MAX_KEY_NAME} characters), never a path: keys are the host's, not the "
        "repository's"),
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



def set_by_reconciler(key: str) -> bool:
    """Whether the reconciler sets this variable on Falco's container itself (from the
    driver mode: ``model.generations``): a manifest's env may not name it."""
    return generations.owned_env_key(key)




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
    AfterValidator(check(_image_rule))]
NetworkName = Annotated[
    str, StringConstraints(pattern=_NETWORK_NAME, max_length=MAX_NETWORK_NAME),
    AfterValidator(check(_network_rule))]


@lru_cache(maxsize=1024)
def falco_version(text: str) -> versions.FalcoVersion:
    return versions.FalcoVersion.parse(text)


def _falco_version_rule(value: str) -> str | None:
    try:
        falco_version(value)
    except ValueError as exc:
        return str(exc)
    return None


def kernel_arch(value: str) -> str:
    try:
        return manifest_arch(value)
    except (KeyError, ValueError):
        raise ValueError(
            f"{value!r} is not a supported architecture: expected amd64 or arm64"
        ) from None


KernelVersion = Annotated[
    str, BeforeValidator(number_to_str),
    StringConstraints(pattern=_KERNEL_VERSION, max_length=MAX_KERNEL_VERSION)]
# A Host's kernels name the distro as its Falco's loader does, not only driverkit's targets.
KernelTarget = Annotated[
    str, StringConstraints(pattern=_TARGET, max_length=MAX_TARGET),
    AfterValidator(check(driverkit.ubuntu_target_problem))]
DriverVersion = Annotated[str, AfterValidator(check(driverkit.driver_version_problem))]
# The version is also the image's default tag; the pattern runs first, so the release
# rule's cache only ever keeps short strings.
# A TCP port (Falco's web server's, for readiness).
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
FalcoRelease = Annotated[
    str, StringConstraints(pattern=_TAG, max_length=MAX_TAG),
    AfterValidator(check(_falco_version_rule))]
Env = Annotated[dict[EnvKey, str], AfterValidator(_env_rule)]
