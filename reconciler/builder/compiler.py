"""Compile the kernel module (kbuild, ``make -C <headers> M=...``) and the eBPF probe
(clang/llc through the tree's ``bpf/Makefile``) in one container without network.

The build folder is private to this build (``/build``: ``src`` the copied tree, ``out``
the results); headers are mounted read-only. When both kinds are wanted they compile at
the same time: the probe is one long clang run and the module a parallel make, so
together they fill the cores better than one after the other. The failing part's output
is printed last, so the tail of the log shows the compiler's complaint.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import headers, sources, steps
from reconciler.edges.docker import jobs
from reconciler.model.artifacts import DriverKind

PROBE_FILE = "probe.o"


@dataclass(frozen=True)
class Outputs:
    """Where the compiled files are on the host, by kind."""

    files: tuple[tuple[DriverKind, Path], ...]

    def path(self, kind: DriverKind) -> Path:
        return dict(self.files)[kind]


def module_file(module_name: str) -> str:
    return f"{module_name}.ko"


def script(
    tree_kind: sources.TreeKind, kinds: Sequence[DriverKind], kernel_dir: str, *,
    module_name: str, device_name: str, driver_version: str, jobs: int,
) -> str:
    """The shell script run in the builder; the tree is at /build/src, results go to
    /build/out."""
    q = shlex.quote
    lines = ["set -u", "mkdir -p /build/out", f"K={q(kernel_dir)}"]
    if tree_kind is sources.TreeKind.LIBS:
        # As driverkit does: configure the libs driver folder, which writes the module
        # tree (with driver_config.h and its Makefile) into the cmake build folder.
        lines += [
            "mkdir -p /build/cmake && cd /build/cmake",
            "cmake -Wno-dev -DUSE_BUNDLED_DEPS=OFF -DCREATE_TEST_TARGETS=OFF "
            "-DBUILD_LIBSCAP_GVISOR=OFF -DBUILD_LIBSCAP_MODERN_BPF=OFF "
            "-DENABLE_DRIVERS_TESTS=OFF -DBUILD_DRIVER=ON -DBUILD_BPF=ON "
            f"-DDRIVER_NAME={q(module_name)} -DDRIVER_DEVICE_NAME={q(device_name)} "
            f"-DPROBE_NAME={q(module_name)} -DPROBE_DEVICE_NAME={q(device_name)} "
            f"-DDRIVER_VERSION={q(driver_version)} /build/src/driver || exit 1",
            "KMOD_DIR=/build/cmake/src",
            "BPF_DIR=/build/src/driver/bpf",
        ]
    else:
        lines += ["KMOD_DIR=/build/src", "BPF_DIR=/build/src/bpf"]
    ko = q(module_file(module_name))
    lines += [
        "build_kmod() {",
        f'  cd "$KMOD_DIR" && make -j{jobs} KERNELDIR="$K" && strip -g {ko} '
        f"&& cp {ko} /build/out/{ko}",
        "}",
        "build_probe() {",
        f'  cd "$BPF_DIR" && make KERNELDIR="$K" && cp {PROBE_FILE} /build/out/{PROBE_FILE}',
        "}",
    ]
    names = [("kmod" if kind is DriverKind.KMOD else "probe") for kind in kinds]
    for name in names:
        lines.append(f"build_{name} >/build/{name}.log 2>&1 & {name}_pid=$!")
    for name in names:
        lines.append(f"{name}_rc=0; wait ${name}_pid || {name}_rc=$?")
    # Successful parts first, failed ones last, so the tail shows the failure.
    lines.append("rc=0")
    for name in names:
        lines.append(f'[ "${name}_rc" = 0 ] && {{ echo "### {name}: ok"; cat /build/{name}.log; }}')
    for name in names:
        lines.append(
            f'[ "${name}_rc" != 0 ] && {{ echo "### {name}: failed (exit ${name}_rc)"; '
            f"cat /build/{name}.log; rc=1; }}"
        )
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


def run(
    eng: jobs.Engine, builder_image: str, tree_kind: sources.TreeKind, *,
    kinds: Sequence[DriverKind], hdrs: headers.Headers, workdir: Path,
    module_name: str, device_name: str, driver_version: str, artifact: str,
    log: steps.BuildLog, timeout: float | None = None,
) -> Outputs:
    """Compile ``kinds`` in ``workdir`` (holding ``src``); the files land in ``workdir/out``."""
    text = script(
        tree_kind, kinds, hdrs.kernel_dir, module_name=module_name, device_name=device_name,
        driver_version=driver_version, jobs=os.cpu_count() or 1,
    )
    result = eng.run(
        builder_image, text,
        mounts=[*hdrs.mounts, jobs.Mount(workdir, "/build", read_only=False)],
        timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.COMPILE, jobs.LABEL_ARTIFACT: artifact},
    )
    steps.check(result, "compiling " + " and ".join(kinds), log)
    out = workdir / "out"
    files = []
    for kind in kinds:
        path = out / (module_file(module_name) if kind is DriverKind.KMOD else PROBE_FILE)
        if not path.is_file():
            raise steps.StepFailed(f"the compiler reported success but left no {path.name}")
        files.append((kind, path))
    return Outputs(tuple(files))
