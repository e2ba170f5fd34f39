"""QEMU, the only module that starts ``qemu-system-x86_64``.

A load test boots a kernel image with an initramfs, no disk and no network (``-nic
none``), its serial console written to a log file, and waits until the guest powers off
(``-no-reboot`` turns the guest's reboot after a panic into QEMU's exit too). The
accelerator defaults to single-threaded TCG: this kind of machine's ``/dev/kvm`` cannot
run a stock kernel, and multi-threaded TCG froze guests while the kernel patched its
tracepoint code. A guest that runs past ``timeout`` is killed and says so: what it logged
until then is kept. QEMU's own failures (missing, bad arguments) become ``VmError``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler import logs
from reconciler.errors import VmError

log = logs.get(__name__)

BINARY = "qemu-system-x86_64"
ARCH = "x86_64"  # the kernels it boots, in the store's spelling
DEFAULT_ACCEL = "tcg,thread=single"


@dataclass(frozen=True)
class Machine:
    """What to boot: a kernel, its initramfs, its command line, and the VM's size."""

    kernel: Path
    initrd: Path
    append: str
    cpus: int = 2
    memory_mb: int = 1024
    accel: str = DEFAULT_ACCEL


@dataclass(frozen=True)
class Boot:
    """How a VM ended: QEMU's exit code (None when it was killed at the timeout)."""

    exit_code: int | None
    seconds: float
    log: Path

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def available() -> bool:
    return shutil.which(BINARY) is not None


def argv(machine: Machine) -> list[str]:
    return [
        BINARY, "-accel", machine.accel, "-smp", str(machine.cpus),
        "-m", str(machine.memory_mb), "-nographic", "-nic", "none", "-no-reboot",
        "-kernel", str(machine.kernel), "-initrd", str(machine.initrd),
        "-append", machine.append,
    ]


def boot(machine: Machine, log_path: Path, *, timeout: float) -> Boot:
    """Boot ``machine`` until it powers off (or ``timeout``), its console in ``log_path``."""
    command = argv(machine)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as out:
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT)
        except OSError as exc:
            raise VmError(f"cannot start {BINARY} (Debian: apt-get install "
                          f"qemu-system-x86): {exc}") from exc
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        except BaseException:
            process.kill()
            process.wait()
            raise
    seconds = time.monotonic() - started
    log.info("vm.boot.done", kernel=str(machine.kernel), exit_code=code,
             seconds=round(seconds, 1))
    if code not in (0, None):
        said = log_path.read_text(errors="replace").strip().splitlines()
        raise VmError(f"{BINARY} exited {code}: {said[-1] if said else 'no output'} "
                      f"(log {log_path})")
    return Boot(code, seconds, log_path)
