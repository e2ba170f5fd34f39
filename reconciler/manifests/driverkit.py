"""Driverkit's config format and validation rules, so its configs can sit in the repo as is.

A document with no ``kind`` that carries driverkit's own keys (``target``, ``kernelrelease``,
``output.module``...) is a driverkit config; ``to_driver_build`` turns it into the mapping of
an equivalent ``DriverBuild`` document. Upstream's build grid
(``driverkit/config/<driverversion>/<x86_64|aarch64>/<target>_<release>_<version>.yaml``)
leaves the driver version, and sometimes the architecture, to the folder names; we read
them from the path the same way.

The rules are driverkit's own (``cmd/root_options.go`` and ``validate/``), kept here in
one place so a ``DriverBuild`` and a plain config are judged alike:

* ``target`` must be a target driverkit has a builder for (``ubuntu-<flavor>`` included,
  the flavor a plain word as Falco's loaders take it from the kernel release);
* ``architecture`` is amd64 or arm64;
* ``driverversion`` is ``master``/``dev``, a commit hash or a semver (``2.0.0+driver``);
  it names a folder of the driver store, so it is also bounded and never spans a line;
* ``kernelrelease`` is required and ASCII; ``kernelversion`` defaults to ``1`` except for
  ubuntu targets, where it is required;
* ``output.module`` must end in ``.ko`` and ``output.probe`` in ``.o``; one is required;
* vanilla, minikube and flatcar need ``kernelconfigdata`` (base64); redhat needs
  ``builderimage``; ``moduledrivername`` is at most 60 characters and
  ``moduledevicename`` at most 255 with no ``/``.

Driverkit's check that the kernel release is new enough for the module is not repeated.

Every value here comes from a git push, so rules bound a value's length before anything
else sees it (the cached rules would otherwise keep megabytes), and messages quote values
through ``quoted``: an alias can make a tiny document hold an enormous list, and printing
it would exhaust memory.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from reconciler.model import versions

# Targets driverkit has builders for (its --target help of recent releases), plus the
# older ubuntu-generic/ubuntu-aws names; every ubuntu-<flavor> is accepted, as Falco's
# loaders name Ubuntu kernels by flavor from 0.33 on.
TARGETS: frozenset[str] = frozenset({
    "alinux", "almalinux", "amazonlinux", "amazonlinux2", "amazonlinux2022",
    "amazonlinux2023", "arch", "bottlerocket", "centos", "debian", "fedora", "flatcar",
    "minikube", "ol", "opensuse", "photon", "redhat", "rocky", "sles", "talos", "ubuntu",
    "ubuntu-generic", "ubuntu-aws", "vanilla",
})
_GRID_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
NEEDS_KERNEL_CONFIG = frozenset({"vanilla", "minikube", "flatcar"})

# Every key a driverkit config file may carry (its flags, as viper reads them).
KEYS: frozenset[str] = frozenset({
    "architecture", "builderimage", "builderrepos", "driverversion", "dryrun", "gccversion",
    "kernelconfigdata", "kernelrelease", "kernelurls", "kernelversion", "loglevel",
    "moduledevicename", "moduledrivername", "output", "proxy", "registry", "repo", "target",
    "timeout",
})
OUTPUT_KEYS = ("module", "probe")
# Keys whose presence (without a ``kind``) says "this is a driverkit config".
MARKERS: frozenset[str] = frozenset({
    "target", "driverversion", "kernelrelease", "kernelversion", "architecture", "output",
    "kernelurls",
})

# DriverBuild location -> driverkit key, to report problems in the config's own terms.
SPEC_TO_CONFIG: Mapping[str, str] = {
    "target": "target",
    "driverVersion": "driverversion",
    "kernelRelease": "kernelrelease",
    "kernelVersion": "kernelversion",
    "architecture": "architecture",
    "outputs": "output",
    "kernelUrls": "kernelurls",
    "kernelConfigData": "kernelconfigdata",
}

# Matched with fullmatch: ``$`` would also accept a trailing newline.
_SHA1 = re.compile(r"[a-z0-9]{7,40}")
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
# The longest driver version and target a store folder or file name part may take: real
# ones are under 45 (a 40-digit commit hash, ``ubuntu-<flavor>-<suffix>``).
MAX_DRIVER_VERSION = 64
MAX_TARGET = 64
# ``ubuntu-<flavor>``: Falco's loaders take the flavor from the kernel release, the letters
# after the build number (``5.15.0-1009-aws`` -> ``ubuntu-aws``); those of 0.33.0 to 0.35.0
# keep what follows it (``5.0.0-1028-aws-5.0`` -> ``ubuntu-aws-5.0``, falco#2178). No
# ``_``: it separates the parts of the artifact's file name.
UBUNTU_TARGET = re.compile(r"ubuntu-[a-z]+(?:-[a-z0-9](?:\.?[a-z0-9+-])*)?")
_SPACE = re.compile(r"\s")
_QUOTED_MAX = 60
_GRID_PATH = re.compile(r"(?:^|/)(?P<version>[^/]+)/(?P<arch>x86_64|aarch64)/[^/]+$")


def did_you_mean(word: str, choices: Any) -> str:
    """``; did you mean 'driver'?`` when a choice is close enough, else ``""``."""
    if len(word) > _QUOTED_MAX:
        return ""  # nothing that long is close to a choice; difflib would index it all
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def quoted(value: Any) -> str:
    """``repr`` for a message, cut short: a value from a push may be megabytes long, or a
    list an alias repeats a billion times over (whose ``repr`` would never end)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set):
        return "a list"
    if isinstance(value, str) and len(value) > _QUOTED_MAX:
        return f"{value[:_QUOTED_MAX]!r}... ({len(value)} characters)"
    return repr(value)


def target_problem(value: str) -> str | None:
    if len(value) > MAX_TARGET:
        return f"{quoted(value)} is not a driverkit target: at most {MAX_TARGET} characters"
    return _target_problem(value)


@lru_cache(maxsize=4096)
def _target_problem(value: str) -> str | None:
    if value in TARGETS:
        return None
    if value.startswith("ubuntu-"):
        return ubuntu_target_problem(value)
    return (
        f"{value!r} is not a driverkit target; expected one of {', '.join(sorted(TARGETS))}"
        f" or ubuntu-<flavor>{did_you_mean(value, TARGETS)}"
    )


def ubuntu_target_problem(value: str) -> str | None:
    """What is wrong with an ``ubuntu-...`` target, if anything (None for other targets)."""
    if not value.startswith("ubuntu-") or UBUNTU_TARGET.fullmatch(value):
        return None
    return (
        f"{value!r} is not a driverkit target: ubuntu-<flavor> takes the flavor as Falco's "
        "loaders do, the word after the build number in `uname -r` (ubuntu-aws for "
        "5.15.0-1009-aws), or with the suffix 0.33 to 0.35.0 kept (ubuntu-aws-5.0)"
    )


def driver_version_problem(value: str) -> str | None:
    if len(value) > MAX_DRIVER_VERSION:
        return (f"{quoted(value)} is not a driver version: at most {MAX_DRIVER_VERSION} "
                "characters, such as 2.0.0+driver")
    return _driver_version_problem(value)


@lru_cache(maxsize=4096)
def _driver_version_problem(value: str) -> str | None:
    if value in ("master", "dev") or _SHA1.fullmatch(value):
        return None
    if _SEMVER.fullmatch(value):
        return versions.driver_release_problem(value)
    return (
        f"{value!r} is not a driver version: expected a release such as 2.0.0+driver, "
        "a commit hash, or master"
    )


def spec_problems(
    *, target: str, kernel_version_given: bool, kernel_config_data: str | None
) -> list[tuple[str, str]]:
    """Driverkit's cross-field rules, as ``(key, message)`` with DriverBuild key names."""
    found: list[tuple[str, str]] = []
    if target.startswith("ubuntu") and not kernel_version_given:
        found.append((
            "kernelVersion",
            f"kernelVersion is required when target is {target} (the number after '#' in "
            "`uname -v`, e.g. 26~22.04.1)",
        ))
    if target in NEEDS_KERNEL_CONFIG and not kernel_config_data:
        found.append((
            "kernelConfigData",
            f"kernelConfigData is required when target is {target}: the kernel's .config, "
            "base64-encoded",
        ))
    if kernel_config_data and not _is_base64(kernel_config_data):
        found.append(("kernelConfigData", "kernelConfigData must be base64-encoded"))
    return found


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def is_config(document: Mapping[Any, Any]) -> bool:
    """A mapping with no ``kind``/``apiVersion`` that has one of driverkit's own keys."""
    if "kind" in document or "apiVersion" in document:
        return False
    return any(key in MARKERS for key in document)


def grid_defaults(relpath: str) -> dict[str, str]:
    """What upstream's grid path says: ``2.0.0+driver/x86_64/x.yaml`` -> version, arch."""
    found = _GRID_PATH.search(relpath)
    if not found:
        return {}
    return {"driverversion": found["version"], "architecture": _GRID_ARCH[found["arch"]]}


def config_name(relpath: str, document: int) -> str:
    """The name a plain config goes by: its path and document index (unique by nature)."""
    name = f"{relpath}#{document}"
    return _SPACE.sub("_", name) if _SPACE.search(name) else name


def to_driver_build(
    config: Mapping[Any, Any], relpath: str, document: int, api_version: str
) -> tuple[dict[str, Any], list[tuple[tuple[str | int, ...], str]]]:
    """The ``DriverBuild`` mapping equivalent to a driverkit config, and the problems that
    only the config's own keys show, located by driverkit key path (``("output", "probe")``).

    Types and the rules shared with ``DriverBuild`` are left to its validation; map its
    error locations back with ``SPEC_TO_CONFIG``.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for key in config:
        if key not in KEYS:
            hint = did_you_mean(str(key), KEYS) or f"; expected one of {', '.join(sorted(KEYS))}"
            problems.append(((str(key),), f"unknown driverkit config key {quoted(key)}{hint}"))

    spec: dict[str, Any] = {}
    defaults = grid_defaults(relpath)
    for config_key, spec_key in SPEC_TO_CONFIG.items():
        if spec_key in config:
            spec[config_key] = config[spec_key]
        elif spec_key in defaults:
            spec[config_key] = defaults[spec_key]
    spec.pop("outputs", None)
    if spec.get("kernelUrls") is None:
        spec.pop("kernelUrls", None)

    if "kernelrelease" not in config:  # a DriverBuild may say newestKernel instead; not this
        problems.append(((), "missing required key 'kernelrelease' in the document"))
    outputs = _outputs(config.get("output"), problems)
    if outputs is not None:
        spec["outputs"] = outputs

    target = config.get("target")
    if target == "redhat" and not config.get("builderimage"):
        problems.append(((), "builderimage is required when target is redhat (driverkit's rule)"))
    _check_length(config, "moduledrivername", 60, problems)
    _check_length(config, "moduledevicename", 255, problems)
    device = config.get("moduledevicename")
    if isinstance(device, str) and "/" in device:
        problems.append((("moduledevicename",), "moduledevicename must not contain '/'"))

    build = {
        "apiVersion": api_version,
        "kind": "DriverBuild",
        "metadata": {"name": config_name(relpath, document)},
        "spec": spec,
    }
    return build, problems


def _outputs(
    output: Any, problems: list[tuple[tuple[str | int, ...], str]]
) -> list[str] | None:
    wanted = "a mapping with module (a .ko path) and/or probe (a .o path)"
    if output is None:
        problems.append(((), f"missing required key 'output': expected {wanted}"))
        return None
    if not isinstance(output, Mapping):
        problems.append(((("output",)), f"output: expected {wanted}, got {quoted(output)}"))
        return None
    kinds: list[str] = []
    for key in output:
        if key not in OUTPUT_KEYS:
            hint = did_you_mean(str(key), OUTPUT_KEYS) or "; expected module or probe"
            problems.append((("output", str(key)), f"unknown key {quoted(key)} in output{hint}"))
    for key, suffix, kind in (("module", ".ko", "kmod"), ("probe", ".o", "ebpf")):
        path = output.get(key)
        if path is None or path == "":
            continue
        if not isinstance(path, str):
            problems.append((
                ("output", key), f"output.{key}: expected a file path, got {quoted(path)}"))
        elif not path.endswith(suffix):
            problems.append((
                ("output", key), f"output.{key} must end in {suffix}, got {quoted(path)}"))
        else:
            kinds.append(kind)
    if not kinds and not (problems and any(p[0][:1] == ("output",) for p in problems)):
        problems.append((("output",), f"output: expected {wanted}"))
    return kinds or None


def _check_length(
    config: Mapping[Any, Any], key: str, limit: int,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> None:
    value = config.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        problems.append(((key,), f"{key} must be a string of at most {limit} characters"))
