"""``reconciler facts``: this host's facts and the driver names each Falco version asks for.

Without ``--falco-version`` it shows the latest release of every known Falco minor plus
each release where a naming rule changes, grouped by the kernel name they share, so one
look tells which artifact a Falco upgrade will request. The same names follow for every
other kernel installed on the host (named as its loader will once that kernel runs), so
one look also tells what a reboot into it will request.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import settings
from reconciler.edges.host import facts as hostfacts
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.model import kernelnames, versions
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.host import HostFacts, InstalledKernel, VersionSource
from reconciler.model.versions import FalcoVersion

# Probe this far when listing the known releases of the version table.
_MAX_MINOR = 99
_MAX_PATCH = 9


ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("facts", help="show this host's facts and the driver names Falco asks for",
                       description=__doc__)
    settings.add_flags(p, "host_root", "hostname")
    p.add_argument("--falco-version", dest="falco_versions", action="append", default=None,
                   metavar="V", help="a Falco release to name drivers for (repeatable; "
                   "default: every known minor and every naming change)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class Naming:
    """What one Falco release's loader asks for on this host, or why it asks for nothing.

    ``unnamed``: that loader names no driver here (a fact about the loader, nothing to
    build); ``error``: we cannot tell (no known driver version, an architecture we do not
    store).
    """

    falco: FalcoVersion
    driver_version: str | None = None
    kernel: KernelId | None = None
    error: str | None = None
    unnamed: str | None = None

    def key(self, kind: DriverKind) -> ArtifactKey:
        assert self.kernel is not None and self.driver_version is not None
        return ArtifactKey.for_kernel(self.kernel, self.driver_version, kind)

    def url_path(self, kind: DriverKind) -> str:
        return self.key(kind).url_path(with_arch=versions.uses_arch_folder(self.falco))


def default_versions() -> tuple[FalcoVersion, ...]:
    """One release per known minor, plus every release where a naming rule changes."""
    picked: set[FalcoVersion] = set()
    for minor in range(_MAX_MINOR + 1):
        patches = [p for p in range(_MAX_PATCH + 1)
                   if versions.known_driver_version(FalcoVersion(0, minor, p)) is not None]
        if patches:
            # A minor known for any patch stands as x.y.0; else its latest listed patch.
            any_patch = patches == list(range(_MAX_PATCH + 1))
            picked.add(FalcoVersion(0, minor, 0 if any_patch else patches[-1]))
    picked.update(v for v in kernelnames.BOUNDARIES if versions.known_driver_version(v))
    return tuple(sorted(picked))


def name_for(host: HostFacts, falco: FalcoVersion) -> Naming:
    try:
        driver = versions.driver_version(str(falco))
        kernel = kernelnames.name(host, falco)
    except ReconcilerError as exc:
        return Naming(falco, error=str(exc))
    if isinstance(kernel, kernelnames.Unnamed):
        return Naming(falco, driver, unnamed=kernel.reason)
    return Naming(falco, driver, kernel)


def others(host: HostFacts) -> tuple[InstalledKernel, ...]:
    """The installed kernels that are not running: the ones a reboot may boot into."""
    return tuple(k for k in host.installed_kernels if k.source is not VersionSource.RUNNING)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    host = hostfacts.read(conf.host_root, hostname=conf.hostname)
    wanted = _parse_versions(args.falco_versions) if args.falco_versions else default_versions()
    namings = [name_for(host, v) for v in wanted]
    booted = {k: [name_for(host.booted(k), v) for v in wanted] for k in others(host)}
    out = as_json(host, namings, booted) if args.json else as_text(host, namings, booted)
    sys.stdout.write(out)
    failed = any(n.error or n.unnamed for n in [*namings, *itertools.chain(*booted.values())])
    return 1 if failed and args.falco_versions else 0


def _parse_versions(texts: Sequence[str]) -> tuple[FalcoVersion, ...]:
    try:
        return tuple(dict.fromkeys(FalcoVersion.parse(t) for t in texts))
    except ValueError as exc:
        raise ConfigError(f"--falco-version: {exc}") from None


def _artifact(naming: Naming, kind: DriverKind) -> dict[str, str]:
    key = naming.key(kind)
    return {"filename": key.filename, "relpath": key.relpath, "urlPath": naming.url_path(kind)}


def _json_entries(namings: Iterable[Naming]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for n in namings:
        entry: dict[str, Any] = {
            "falcoVersion": str(n.falco),
            "loader": str(versions.loader_kind(n.falco)),
        }
        if n.unnamed is not None:
            entry["driverVersion"] = n.driver_version
            entry["unnamed"] = n.unnamed
        elif n.error is not None or n.kernel is None:
            entry["error"] = n.error
        else:
            entry["driverVersion"] = n.driver_version
            entry["kernel"] = {
                "target": n.kernel.target,
                "kernelRelease": n.kernel.kernel_release,
                "kernelVersion": n.kernel.kernel_version,
                "architecture": n.kernel.arch,
            }
            entry["artifacts"] = {kind.value: _artifact(n, kind) for kind in DriverKind}
        entries.append(entry)
    return entries


def _json_kernel(kernel: InstalledKernel) -> dict[str, Any]:
    return {
        "kernelRelease": kernel.release,
        "kernelVersion": kernel.version,
        "source": str(kernel.source),
        "running": kernel.source is VersionSource.RUNNING,
        "image": kernel.image or None,
        "detail": kernel.detail,
    }


def as_json(host: HostFacts, namings: Iterable[Naming],
            booted: Mapping[InstalledKernel, Sequence[Naming]] | None = None) -> str:
    """One object: the host, the names for the running kernel (``falco``) and, under
    ``installedKernels``, each installed kernel with the names it needs once booted."""
    booted = booted or {}
    kernels = []
    for k in host.installed_kernels:
        item = _json_kernel(k)
        if k in booted:
            item["falco"] = _json_entries(booted[k])
        kernels.append(item)
    document = {
        "host": {
            "hostname": host.hostname,
            "kernelRelease": host.kernel_release,
            "kernelVersion": host.kernel_version,
            "machine": host.machine,
            "osId": host.os_id,
            "osVersionId": host.os_version_id,
            "osRelease": dict(host.os_release),
            "osReleaseFile": host.os_release_file or None,
            "minikubeVersion": host.minikube_version,
            "legacyReleaseFiles": list(host.legacy_release_files),
        },
        "falco": _json_entries(namings),
        "installedKernels": kernels,
    }
    return json.dumps(document, indent=2) + "\n"


def as_text(host: HostFacts, namings: Sequence[Naming],
            booted: Mapping[InstalledKernel, Sequence[Naming]] | None = None) -> str:
    """The host, the names for its running kernel, then those of each other installed
    kernel under a heading of its own."""
    booted = booted or {}
    lines = [
        f"host {host.hostname}",
        f"  kernel release  {host.kernel_release}",
        f"  kernel version  {host.kernel_version}",
        f"  machine         {host.machine}",
        f"  os              {host.os_id or '-'} {host.os_version_id}".rstrip(),
    ]
    if host.minikube_version is not None:
        lines.append(f"  etc/VERSION     {host.minikube_version.strip()}")
    lines.extend(_installed_lines(host.installed_kernels))
    if booted:
        lines.extend(["", f"== now, {host.kernel_release} running"])
    lines.extend(_naming_lines(namings))
    for kernel, kernel_namings in booted.items():
        lines.extend(["", f"== once {kernel.release} runs (uname -v from {kernel.source})"])
        lines.extend(_naming_lines(kernel_namings))
    return "\n".join(lines) + "\n"


def _installed_lines(kernels: Sequence[InstalledKernel]) -> list[str]:
    if not kernels:
        return ["  installed       - (no kernel image with its modules under the host root)"]
    lines = ["  installed kernels"]
    width = max(len(k.release) for k in kernels)
    source_width = max(len(str(k.source)) for k in kernels)
    for k in kernels:
        lines.append(f"    {k.release:<{width}}  {k.source!s:<{source_width}}  {k.version}")
        if k.source in (VersionSource.DPKG, VersionSource.DEFAULT):
            # a fallback: say why the image did not tell, one reason a line
            lines.extend(f"    {'':<{width}}  {'':<{source_width}}  {note}"
                         for note in k.detail.split("; ") if note)
    return lines


def _naming_lines(namings: Sequence[Naming]) -> list[str]:
    lines: list[str] = []
    for group in _groups(namings):
        first = group[0]
        span = ", ".join(str(n.falco) for n in group)
        lines.append("")
        if first.unnamed is not None:
            lines.append(f"Falco {span}: names no driver: {first.unnamed}")
            continue
        if first.kernel is None:
            lines.append(f"Falco {span}: no driver name: {first.error}")
            continue
        k = first.kernel
        lines.append(f"Falco {span}")
        lines.append(f"  kernel  target {k.target}, release {k.kernel_release}, "
                     f"version {k.kernel_version}, arch {k.arch}")
        lines.append(f"  files   {first.key(DriverKind.KMOD).filename}  "
                     f"{first.key(DriverKind.EBPF).filename}")
        width = max(len(str(n.falco)) for n in group)
        for n in group:
            store_dir = n.key(DriverKind.KMOD).relpath.rsplit("/", 1)[0]
            url = n.url_path(DriverKind.KMOD).removesuffix(DriverKind.KMOD.suffix)
            lines.append(f"  {n.falco!s:<{width}}  store {store_dir}/  "
                         f"GET {url}{DriverKind.KMOD.suffix}|{DriverKind.EBPF.suffix}")
    return lines


def _groups(namings: Sequence[Naming]) -> list[list[Naming]]:
    """Consecutive releases that name the kernel alike (or fail alike) share one block."""
    groups: list[list[Naming]] = []
    for n in namings:
        last = groups[-1][0] if groups else None
        if last is not None and (last.kernel, last.error, last.unnamed) == (
                n.kernel, n.error, n.unnamed):
            groups[-1].append(n)
        else:
            groups.append([n])
    return groups
