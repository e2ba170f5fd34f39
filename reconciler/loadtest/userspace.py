"""The guest's userspace: scap-open from the driver's own falcosecurity/libs tree.

libscap is compiled with the artifact's driver and device names (libscap opens
``/dev/<device>N`` and reads ``/sys/module/<module>``), linked statically so the
initramfs needs no shared library, in a container of the builder image (apt reaches the
Debian mirror for uthash; nothing comes from GitHub). It is built once per driver version,
source, names, builder image and recipe, and cached under ``<cache>/guest-userspace/``.
A DKMS tree has no libscap: a ``deb:`` DKMS package's artifacts are tested with
scap-open from Debian's source package of the same version (``deb-src:``, see
``builder.sources``); other DKMS trees cannot be load-tested from their own source.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from reconciler.builder import locks, sources, steps
from reconciler.edges.docker import jobs
from reconciler.errors import LoadTestError, StepFailed
from reconciler.model.container import BindMount

_FILES = ("guest-userspace.cmake", "event-number.c", "line-buffered.c")
_SCRIPT = "guest-userspace.sh"


@dataclass(frozen=True)
class GuestUserspace:
    scap_open: Path
    mkdir_event: int  # the event number scap-open prints for mkdir's exit in this tree
    libs_version: str


@cache
def script_text(name: str) -> str:
    return (resources.files("reconciler.loadtest") / "scripts" / name).read_text("utf-8")


def cache_key(libs_version: str, source_spec: str, builder_image: str,
              module_name: str, device_name: str) -> str:
    recipe = "\0".join(script_text(name) for name in (_SCRIPT, *_FILES))
    text = "\0".join((libs_version, source_spec, builder_image, module_name, device_name,
                      recipe))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def ensure(
    eng: jobs.Jobs, builder_image: str, source: sources.Source, source_spec: str,
    driver_version: str, *, module_name: str, device_name: str, cache_root: Path,
    log: steps.BuildLog, timeout: float | None = None, libs_version: str | None = None,
) -> GuestUserspace:
    """scap-open for ``driver_version``'s tree, built now unless cached. ``libs_version``
    is the tree's libs (userspace) version where known, else the driver version."""
    if source.kind is not sources.TreeKind.LIBS:
        raise LoadTestError(
            f"driver source {source_spec!r} is a DKMS tree without libscap: a load test "
            "needs a falcosecurity/libs tree to build scap-open from")
    key = cache_key(libs_version or driver_version, source_spec, builder_image, module_name,
                    device_name)
    folder = cache_root / "guest-userspace" / key
    if not (folder / "scap-open").is_file():
        with locks.held(folder.with_name(f".{key}.lock")):
            if not (folder / "scap-open").is_file():
                _build(eng, builder_image, source.tree, folder, module_name=module_name,
                       device_name=device_name, log=log, timeout=timeout)
    return _read(folder, libs_version or driver_version)


def _build(eng: jobs.Jobs, image: str, tree: Path, folder: Path, *, module_name: str,
           device_name: str, log: steps.BuildLog, timeout: float | None) -> None:
    partial = folder.with_name(f".{folder.name}.partial-{secrets.token_hex(4)}")
    (partial / "scripts").mkdir(parents=True)
    (partial / "out").mkdir()
    try:
        for name in (_SCRIPT, *_FILES):
            (partial / "scripts" / name).write_text(script_text(name), encoding="utf-8")
        log.note(f"guest userspace: scap-open from {tree}")
        result = eng.run(
            image, script_text(_SCRIPT),
            mounts=[BindMount(str(tree), "/src", read_only=True),
                    BindMount(str(partial / "scripts"), "/build/scripts", read_only=True),
                    BindMount(str(partial / "out"), "/build/out", read_only=False)],
            network="host", timeout=timeout,
            environment={"LIBS_SOURCE": "/src", "DRIVER_NAME": module_name,
                         "DEVICE_NAME": device_name, "JOBS": "2"},
            labels={jobs.LABEL_STEP: "guest-userspace"},
        )
        try:
            steps.check(result, "building scap-open for the load test", log)
        except StepFailed as exc:
            raise LoadTestError(f"{exc.reason}; log {log.path}:\n{steps.tail(exc.output)}"
                                ) from exc
        (partial / "out").rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _read(folder: Path, libs_version: str) -> GuestUserspace:
    try:
        event = int((folder / "mkdir-event").read_text().strip())
    except (OSError, ValueError) as exc:
        raise LoadTestError(f"the cached guest userspace in {folder} is unreadable: {exc}"
                            ) from exc
    return GuestUserspace(folder / "scap-open", event, libs_version)
