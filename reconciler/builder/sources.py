"""Driver source by driver version, cached on the host, copied privately for each build.

``--source`` is one of:

- a URL template with ``{driverVersion}`` (default: the falcosecurity/libs archive that
  driverkit downloads), fetched and unpacked on the host;
- a local folder (used in place) or tarball (unpacked);
- ``deb:<package>[=<version>][/<suite>]``: a Debian package downloaded by ``apt-get
  download`` in the builder and unpacked with ``dpkg-deb -x`` (e.g.
  ``deb:falcosecurity-scap-dkms/trixie``). A suite the builder image's apt sources lack
  is added for that download, from the same mirror and keyring as the image's own.
- ``deb-src:<package>[=<version>][/<suite>]``: Debian's source package that builds that
  binary package, at its exact version, unpacked with Debian's patches (``dpkg-source
  -x``) through deb-src lines for the suite. The load test builds scap-open for a
  ``deb:`` DKMS package from it (a DKMS tree has no libscap; its source package does).

What is found is either a falcosecurity/libs tree (``driver/CMakeLists.txt``: configured
with cmake at compile time, as driverkit does) or a DKMS-style tree (a ``Makefile`` and a
ready ``driver_config.h``, as Debian ships it), built directly after its module and device
names are set in ``driver_config.h`` and its ``Makefile``. Caches appear by directory
rename only when complete.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import headers, locks, steps
from reconciler.edges.docker import jobs
from reconciler.edges.http import client as httpclient
from reconciler.errors import HttpError, StepFailed
from reconciler.model.container import BindMount
from reconciler.model.urls import redacted

DEB_PREFIX = "deb:"
DEB_SRC_PREFIX = "deb-src:"
# Where to look for a package version that fits, when the one asked for does not: the
# archive's moving aliases, reported by the codename they stand for today.
SUGGESTED_SUITES = ("stable", "testing", "unstable")
_DEB = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(?:=(?P<version>[A-Za-z0-9.+~:-]+))?"
                  r"(?:/(?P<suite>[a-z0-9][a-z0-9.-]*))?")


@dataclass(frozen=True)
class DebPackage:
    """``deb:<name>[=<version>][/<suite>]``, apt's own syntax for one package."""

    name: str
    version: str | None
    suite: str | None

    @classmethod
    def parse(cls, spec: str) -> DebPackage:
        match = _DEB.fullmatch(spec.removeprefix(DEB_SRC_PREFIX).removeprefix(DEB_PREFIX))
        if not match:
            raise StepFailed(
                f"driver source {spec!r} is not deb:<package>[=<version>][/<suite>] "
                "(e.g. deb:falcosecurity-scap-dkms/trixie)"
            )
        return cls(match["name"], match["version"], match["suite"])

    @property
    def apt_argument(self) -> str:
        """What ``apt-get download`` takes: a version pins harder than a suite."""
        if self.version:
            return f"{self.name}={self.version}"
        return f"{self.name}/{self.suite}" if self.suite else self.name


class TreeKind(enum.StrEnum):
    DKMS = "dkms"  # Makefile + driver_config.h, built directly
    LIBS = "libs"  # falcosecurity/libs: cmake configures driver/ first


@dataclass(frozen=True)
class Source:
    kind: TreeKind
    tree: Path  # pristine, never written to by a build


def cache_key(spec: str, driver_version: str) -> str:
    digest = hashlib.sha256(f"{spec}\0{driver_version}".encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9.+-]", "_", driver_version)[:60]
    return f"{safe}-{digest}"


def ensure(
    eng: jobs.Jobs, builder_image: str, spec: str, driver_version: str, *,
    cache_root: Path, log: steps.BuildLog, timeout: float | None = None,
) -> Source:
    """The source tree of ``driver_version`` from ``spec``, fetched if not cached."""
    debian = spec.startswith((DEB_PREFIX, DEB_SRC_PREFIX))
    if debian:
        DebPackage.parse(spec)  # a malformed spec fails before any container
    if not debian and "://" not in spec:
        local = Path(spec).expanduser()
        if local.is_dir():
            log.note(f"driver source: the folder {local}")
            return classify(local, spec)
        if not local.is_file():
            raise StepFailed(
                f"driver source {spec!r} is neither a folder, a tarball, a URL template "
                "nor deb:<package>"
            )
    folder = cache_root / cache_key(spec, driver_version)
    if (folder / "root").is_dir():
        log.note(f"driver source {driver_version}: cached in {folder}")
        return classify(folder / "root", spec)
    with locks.held(folder.with_name(f".{folder.name}.lock")):
        if not (folder / "root").is_dir():
            partial = folder.with_name(f".{folder.name}.partial-{secrets.token_hex(4)}")
            (partial / "root").mkdir(parents=True)
            try:
                _fetch(eng, builder_image, spec, driver_version, partial=partial, log=log,
                       timeout=timeout)
                partial.rename(folder)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return classify(folder / "root", spec)


def _fetch(
    eng: jobs.Jobs, image: str, spec: str, driver_version: str, *, partial: Path,
    log: steps.BuildLog, timeout: float | None,
) -> None:
    if spec.startswith((DEB_PREFIX, DEB_SRC_PREFIX)):
        package = DebPackage.parse(spec)
        of_source = spec.startswith(DEB_SRC_PREFIX)
        log.note(("driver source: Debian's source package of " if of_source else
                  "driver source: the Debian package ") + package.apt_argument
                 + (f" (suite {package.suite})" if package.suite else ""))
        script = "source-debsrc.sh" if of_source else "source-deb.sh"
        result = eng.run(
            image, steps.script("apt-suite.sh", script),
            mounts=[BindMount(str(partial), "/out", read_only=False)],
            network="host", timeout=timeout,
            environment={"PACKAGE": package.apt_argument, "SUITE": package.suite or ""},
            labels={jobs.LABEL_STEP: steps.Step.DRIVER_SOURCE},
        )
        steps.check(result, f"downloading the package {package.apt_argument}", log)
        return
    if "://" in spec:
        url = spec.replace("{driverVersion}", driver_version)
        archive = partial / "source.tar"
        log.note(f"driver source: {redacted(url)}")
        try:
            httpclient.download(url, archive, timeout=timeout, deadline=timeout,
                                schemes=headers.LOCAL_OR_HTTP)
        except HttpError as exc:
            raise StepFailed(
                f"cannot fetch driver {driver_version} from {redacted(url)}: {exc}"
            ) from exc
    else:
        archive = Path(spec).expanduser()
        log.note(f"driver source: the tarball {archive}")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(partial / "root", filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise StepFailed(f"cannot unpack the driver source {archive}: {exc}") from exc
    if archive.parent == partial:
        archive.unlink()


def debian_version(source: Source) -> str | None:
    """The Debian version of a ``deb-src:`` tree (``0.20.0-3``), else None."""
    marker = source.tree / ".debian-source-version"
    return marker.read_text().strip() if marker.is_file() else None


def classify(root: Path, spec: str) -> Source:
    """Find the driver tree under ``root`` (at most four levels down)."""
    queue = [(root, 0)]
    while queue:
        folder, depth = queue.pop(0)
        if (folder / "driver" / "CMakeLists.txt").is_file():
            return Source(TreeKind.LIBS, folder)
        if (folder / "Makefile").is_file() and (folder / "driver_config.h").is_file():
            return Source(TreeKind.DKMS, folder)
        if depth < 4:
            queue.extend(
                (child, depth + 1) for child in sorted(folder.iterdir())
                if child.is_dir() and not child.is_symlink()
            )
    raise StepFailed(
        f"driver source {spec!r} holds no driver: neither a falcosecurity/libs tree "
        "(driver/CMakeLists.txt) nor a DKMS tree (Makefile and driver_config.h)"
    )


def prepare(source: Source, workdir: Path, module_name: str, device_name: str) -> Path:
    """Copy the tree to ``workdir/src`` for one build; a DKMS tree gets our names."""
    target = workdir / "src"
    shutil.copytree(source.tree, target, symlinks=True)
    if source.kind is TreeKind.DKMS:
        rename_dkms(target, module_name, device_name)
    return target


_OBJ_M = re.compile(r"^obj-m\s*[+:]?=\s*(\S+)\.o\s*$", re.MULTILINE)


def rename_dkms(tree: Path, module_name: str, device_name: str) -> None:
    """Set the module and device names of a ready tree (driverkit's moduledrivername and
    moduledevicename): the defines in driver_config.h and the module in the Makefile."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
        raise StepFailed(f"module name {module_name!r} is not a valid kernel module name")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", device_name):
        raise StepFailed(f"device name {device_name!r} is not a valid device name")
    config = tree / "driver_config.h"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'(#define\s+(?:DRIVER|PROBE)_NAME\s+)"[^"]*"', rf'\1"{module_name}"', text)
    text = re.sub(
        r'(#define\s+(?:DRIVER|PROBE)_DEVICE_NAME\s+)"[^"]*"', rf'\1"{device_name}"', text
    )
    config.write_text(text, encoding="utf-8")
    makefile = tree / "Makefile"
    text = makefile.read_text(encoding="utf-8")
    match = _OBJ_M.search(text)
    if match is None:
        raise StepFailed(f"{makefile.name} of the driver source has no obj-m line")
    old = re.escape(match[1])
    text = re.sub(rf"^{old}-(y|objs)\b", rf"{module_name}-\1", text, flags=re.MULTILINE)
    text = _OBJ_M.sub(f"obj-m += {module_name}.o", text)
    makefile.write_text(text, encoding="utf-8")
