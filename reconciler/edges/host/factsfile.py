"""Another host's facts, from the JSON ``reconciler facts --json`` printed there.

``plan --hostname web-1 --facts web-1.json`` plans web-1 from a build host or a laptop:
its kernel, distribution and installed kernels, not this machine's. The file is read once;
every problem is one sentence naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.edges import capped
from reconciler.errors import ConfigError
from reconciler.model.host import HostFacts, InstalledKernel, VersionSource

MAX_BYTES = 4 << 20  # a host with hundreds of kernels writes a few hundred KB


def read(path: Path) -> HostFacts:
    """The facts in ``path``; ConfigError when it cannot be read or is not such a file."""
    data = capped.read(path, MAX_BYTES, "the facts file", ConfigError,
                       expected="not the output of `reconciler facts --json`")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); expected the output of "
                          f"`reconciler facts --json` taken on that host") from exc
    try:
        return parse(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}; expected the output of `reconciler facts --json` "
                          f"taken on that host") from exc


def _text(section: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = section.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"host.{key} must be a string, got {type(value).__name__}")
    return value


def parse(document: Any) -> HostFacts:
    """The inverse of ``facts --json``'s ``host`` and ``installedKernels``."""
    if not isinstance(document, dict) or not isinstance(document.get("host"), dict):
        raise ValueError("no 'host' object")
    host: dict[str, Any] = document["host"]
    os_release = host.get("osRelease") or {}
    if not isinstance(os_release, dict):
        raise TypeError("host.osRelease must be an object")
    kernels = []
    for item in document.get("installedKernels") or []:
        if not isinstance(item, dict):
            raise TypeError("installedKernels must hold objects")
        kernels.append(InstalledKernel(
            release=_text(item, "kernelRelease"), version=_text(item, "kernelVersion"),
            source=VersionSource(_text(item, "source")),
            image=_text(item, "image", required=False),
            detail=_text(item, "detail", required=False)))
    legacy = host.get("legacyReleaseFiles") or []
    minikube = host.get("minikubeVersion")
    return HostFacts(
        hostname=_text(host, "hostname"), kernel_release=_text(host, "kernelRelease"),
        kernel_version=_text(host, "kernelVersion"), machine=_text(host, "machine"),
        os_id=_text(host, "osId"), os_version_id=_text(host, "osVersionId", required=False),
        os_release=tuple((str(k), str(v)) for k, v in os_release.items()),
        os_release_file=_text(host, "osReleaseFile", required=False),
        minikube_version=minikube if isinstance(minikube, str) else None,
        legacy_release_files=tuple(str(f) for f in legacy),
        installed_kernels=tuple(kernels),
    )
