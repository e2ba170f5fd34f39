"""Compile the kernel module (kbuild) and the eBPF probe (clang/llc through the tree's
``bpf/Makefile``) in one container without network, with ``scripts/compile.sh``.

The build folder is private to this build (``/build``: ``src`` the copied tree, ``out``
the results); headers are mounted read-only. When both kinds are wanted they compile at
the same time: the probe is one long clang run and the module a parallel make, so
together they fill the cores better than one after the other.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import headers, sources, steps
from reconciler.edges.docker import jobs
from reconciler.errors import StepFailed
from reconciler.model.artifacts import DriverKind
from reconciler.model.container import BindMount

PROBE_FILE = "probe.o"
_SCRIPT_KIND = {DriverKind.KMOD: "kmod", DriverKind.EBPF: "probe"}  # compile.sh's names


@dataclass(frozen=True)
class Outputs:
    """Where the compiled files are on the host, by kind."""

    files: tuple[tuple[DriverKind, Path], ...]


MAX_OUTPUT = 256 << 20  # a module is a few MB; anything near this is not one


def module_file(module_name: str) -> str:
    return f"{module_name}.ko"


def run(
    eng: jobs.Jobs, builder_image: str, tree_kind: sources.TreeKind, *,
    kinds: Sequence[DriverKind], hdrs: headers.Headers, workdir: Path,
    module_name: str, device_name: str, driver_version: str, artifact: str,
    log: steps.BuildLog, timeout: float | None = None,
) -> Outputs:
    """Compile ``kinds`` in ``workdir`` (holding ``src``); the files land in ``workdir/out``."""
    result = eng.run(
        builder_image, steps.script("compile.sh"),
        mounts=[*hdrs.mounts, BindMount(str(workdir), "/build", read_only=False)],
        environment={
            "TREE_KIND": tree_kind.value, "KINDS": " ".join(_SCRIPT_KIND[k] for k in kinds),
            "KERNEL_DIR": hdrs.kernel_dir, "MODULE_NAME": module_name,
            "DEVICE_NAME": device_name, "DRIVER_VERSION": driver_version,
            "JOBS": str(os.cpu_count() or 1),
        },
        timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.COMPILE, jobs.LABEL_ARTIFACT: artifact},
    )
    steps.check(result, "compiling " + " and ".join(kinds), log)
    out = workdir / "out"
    files = []
    for kind in kinds:
        path = out / (module_file(module_name) if kind is DriverKind.KMOD else PROBE_FILE)
        files.append((kind, _output(out, path)))
    return Outputs(tuple(files))


def _output(out: Path, path: Path) -> Path:
    """``path`` if it is a plain file of at most ``MAX_OUTPUT`` bytes inside ``out``. The
    container ran code from the headers and the source: a symlink it left (to a host file
    such as a key) is never followed, and a file of any size never read. It has exited, so
    nothing changes between this check and the reading."""
    for part in (out, path):
        try:
            info = part.lstat()
        except FileNotFoundError:
            raise StepFailed(
                f"the compiler reported success but left no {path.name}") from None
        wanted = stat.S_ISDIR if part is out else stat.S_ISREG
        if not wanted(info.st_mode):
            raise StepFailed(f"the compiler left {part.name} as a symlink or a special "
                                   "file: it is never followed")
    if path.lstat().st_size > MAX_OUTPUT:
        raise StepFailed(f"the compiler left a {path.name} of {path.lstat().st_size} "
                               f"bytes, over the {MAX_OUTPUT} a driver can be")
    return path
