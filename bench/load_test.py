"""Load test cost: one kernel's load test (module, then probe) beside a bare QEMU
boot-insmod-poweroff of the same kernel with the same module, in one run.

The module and probe are built once (libs 8.0.0+driver tree, newest cached Debian 6.1
cloud kernel; header and source caches shared with the test suite), scap-open once; the
rounds then alternate bare and ours so both see the same machine load:

- bare: a busybox initramfs whose init inserts the module and powers off, nothing more
  (the same VM size and kernel command line as ours, ``guest.APPEND``);
- ours: ``tester.test`` for the module (insert, devices, capture with markers, rmmod,
  log scan) and for the probe (verifier, capture attempt).

Prints every round, the medians and minimums, and ours/bare (targets: < 60 s per kernel for
module and probe together; the module's test < 1.3x the bare boot). The minimum is the
steadier figure on a shared machine. Each line also shows the guest's own time from
``Run /init`` to ``Power down`` (kernel timestamps in the VM log): the part of a boot that
the test's userspace adds to.

    python bench/load_test.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")

import docker  # noqa: E402 - after the sys.path set-up above

from reconciler import logs  # noqa: E402 - after the sys.path set-up above
from reconciler.builder import runner  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.docker.client import Docker, connect  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.store.local import Store  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.vm import kernelimage, qemu  # noqa: E402 - after the sys.path set-up above
from reconciler.loadtest import guest, initramfs, tester  # noqa: E402 - after the sys.path set-up above
from reconciler.model.artifacts import DriverKind  # noqa: E402 - after the sys.path set-up above
from tests.builder.helpers import CACHE_ROOT, request  # noqa: E402 - after the sys.path set-up above
from tests.conftest import BASE_IMAGE  # noqa: E402 - after the sys.path set-up above
from tests.support import kernelpkg  # noqa: E402 - after the sys.path set-up above
from tests.support.loadtest import DRIVER_VERSION, libs_tarball  # noqa: E402 - after the sys.path set-up above

BARE_INIT = b"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox insmod /driver.ko && /bin/busybox echo bare-insmod-ok
/bin/busybox poweroff -f
"""


def guest_seconds(log: Path) -> float:
    """Kernel time from running /init to powering down, from the console log."""
    text = log.read_text(errors="replace")
    found = [re.search(rf"\[\s*(\d+\.\d+)\] {what}", text) for what in (
        "Run /init", "reboot: Power down")]
    return float(found[1][1]) - float(found[0][1]) if found[0] and found[1] else float("nan")


def bare(image: Path, module: Path, work: Path) -> tuple[float, float]:
    initrd = work / "bare.initrd"
    initrd.write_bytes(initramfs.encode([
        initramfs.Entry.folder("bin"), initramfs.Entry.folder("dev"),
        initramfs.Entry.folder("proc"), initramfs.Entry.char_device("dev/console", 5, 1),
        initramfs.Entry.file("bin/busybox", guest.static_busybox(), executable=True),
        initramfs.Entry.file("init", BARE_INIT, executable=True),
        initramfs.Entry.file("driver.ko", module.read_bytes()),
    ]))
    started = time.monotonic()
    boot = qemu.boot(qemu.Machine(image, initrd, guest.APPEND), work / "bare.log", timeout=300)
    seconds = time.monotonic() - started
    assert "bare-insmod-ok" in boot.log.read_text(errors="replace"), boot.log
    return seconds, guest_seconds(boot.log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logs.configure(level="warning", fmt="console")
    (deb,) = kernelpkg.cached()[:1]
    work = Path(tempfile.mkdtemp(prefix="bench-loadtest-"))
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (work / "cache").symlink_to(CACHE_ROOT / "cache")
    source = str(libs_tarball(DRIVER_VERSION))
    config = runner.BuildConfig(state_dir=work, store=work / "store", source=source,
                                base_image=BASE_IMAGE, jobs=2, timeout=1800.0)
    client = docker.from_env()
    (outcome,) = runner.build_all(
        [request(deb.release, DRIVER_VERSION, DriverKind.KMOD, DriverKind.EBPF)], config,
        Docker(client), Store(config.store))
    if outcome.error is not None:
        raise outcome.error
    module, probe = (a.path for a in outcome.artifacts)
    setup = tester.Setup(work, source, BASE_IMAGE)
    engine = connect(60)
    space = tester.prepare(engine, setup, DRIVER_VERSION)
    engine.close()
    image = kernelimage.from_package(deb.deb, work / "cache" / "kernel-images")
    print(f"kernel {deb.release}, accel {qemu.DEFAULT_ACCEL}, {args.rounds} rounds")
    rows: list[tuple[float, float, float]] = []
    for index in range(args.rounds):
        plain, plain_guest = bare(image.path, module, work)
        started = time.monotonic()
        kmod = tester.test(guest.Subject(module, DriverKind.KMOD), deb.deb, space, setup)
        ours_kmod = time.monotonic() - started
        started = time.monotonic()
        ebpf = tester.test(guest.Subject(probe, DriverKind.EBPF), deb.deb, space, setup)
        ours_probe = time.monotonic() - started
        rows.append((plain, ours_kmod, ours_probe))
        print(f"round {index + 1}: bare {plain:5.1f} s (guest {plain_guest:.2f} s) | module "
              f"test {ours_kmod:5.1f} s (guest {guest_seconds(Path(kmod.vm_log)):.2f} s, "
              f"{kmod.outcome}, {kmod.events} events) | probe test {ours_probe:5.1f} s "
              f"({ebpf.outcome}{', loaded' if ebpf.loaded else ''})")
    for name, pick in (("median", statistics.median), ("minimum", min)):
        got = [pick(column) for column in zip(*rows, strict=True)]
        print(f"{name}: bare {got[0]:.1f} s, module test {got[1]:.1f} s, probe test "
              f"{got[2]:.1f} s; module + probe per kernel {got[1] + got[2]:.1f} s (target < "
              f"60 s); module test / bare {got[1] / got[0]:.2f}x (target < 1.3x)")


if __name__ == "__main__":
    main()
