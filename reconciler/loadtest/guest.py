"""One load test: the artifact, scap-open and the guest's init in an initramfs, one boot
of the target kernel in QEMU, and the console log judged by ``scan``.

Each run has its own marker token, so a capture can only show the mkdirs of this run. The
kernel command line turns an oops and a soft lockup into a panic, and ``-no-reboot``
turns that panic into QEMU's exit: a broken driver ends the VM with its backtrace in the
log instead of hanging until the timeout. The VM log is kept (its path is in the result).
"""

from __future__ import annotations

import secrets
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges.vm import qemu
from reconciler.edges.vm.kernelimage import KernelImage
from reconciler.errors import LoadTestError
from reconciler.loadtest import compat, initramfs, scan
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.loadtest.userspace import GuestUserspace, script_text
from reconciler.model.artifacts import DriverKind

# rcu_expedited: the driver's consumer teardown and rmmod wait for ~15 RCU grace periods;
# expedited ones end in a fraction of the time of normal ones under emulation (same
# guarantees, a setting real hosts use too; the kernel already expedites them while it boots)
APPEND = "console=ttyS0 panic=-1 oops=panic softlockup_panic=1 rcupdate.rcu_expedited=1"
# the busybox applets the guest's init runs, linked in /bin (builtins need no link)
APPLETS = ("cat", "grep", "insmod", "mkdir", "mkfifo", "mount", "poweroff", "rmmod")
# what the guest's init mounts, all with one `mount -a` (a process costs ~10 ms under TCG)
FSTAB = "proc /proc proc defaults 0 0\nsysfs /sys sysfs defaults 0 0\n" \
        "devtmpfs /dev devtmpfs defaults 0 0\n"
_PT_INTERP = 3


@dataclass(frozen=True)
class Subject:
    """The artifact under test and the names it was built with."""

    artifact: Path
    kind: DriverKind
    module_name: str = "falco"
    device_name: str = "falco"


@dataclass(frozen=True)
class Options:
    markers: int = 5
    capture_seconds: int = 10  # at most, for the markers to be read back
    timeout: float = 300.0
    accel: str = qemu.DEFAULT_ACCEL
    cpus: int = 2
    memory_mb: int = 1024


DEFAULT_OPTIONS = Options()


def params(subject: Subject, userspace: GuestUserspace, token: str, options: Options) -> str:
    """The guest's /loadtest/params (sourced by its init)."""
    values = {
        "KIND": str(subject.kind), "MODULE": subject.module_name,
        "DEVICE": subject.device_name, "MKDIR_EVENT": str(userspace.mkdir_event),
        "TOKEN": token, "MARKERS": str(options.markers),
        "SECONDS_CAPTURE": str(options.capture_seconds),
    }
    return "".join(f"{key}={value}\n" for key, value in values.items())


def entries(subject: Subject, artifact: bytes, scap_open: bytes, busybox: bytes,
            params_text: str) -> list[initramfs.Entry]:
    """What the initramfs holds, folders first."""
    entry = initramfs.Entry
    return [
        *(entry.folder(name) for name in ("bin", "dev", "etc", "proc", "sys", "tmp",
                                          "loadtest")),
        entry.char_device("dev/console", 5, 1),
        entry.file("etc/fstab", FSTAB.encode()),
        entry.file("bin/busybox", busybox, executable=True),
        *(entry.symlink(f"bin/{applet}", "busybox") for applet in APPLETS),
        entry.file("init", script_text("init.sh").encode(), executable=True),
        entry.file(f"loadtest/driver{subject.kind.suffix}", artifact),
        entry.file("loadtest/scap-open", scap_open, executable=True),
        entry.file("loadtest/params", params_text.encode()),
    ]


def static_busybox() -> bytes:
    """The host's busybox, which must be the static one (the guest has no libc)."""
    found = shutil.which("busybox")
    if found is None:
        raise LoadTestError("no busybox: install busybox-static (Debian: apt-get install "
                            "busybox-static)")
    data = Path(found).read_bytes()
    if _interpreter(data):
        raise LoadTestError(f"{found} is linked dynamically: install busybox-static")
    return data


def _interpreter(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF asks for a dynamic loader (has PT_INTERP)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return True
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == _PT_INTERP
               for i in range(phnum))


def run(subject: Subject, image: KernelImage, userspace: GuestUserspace, vm_log: Path,
        options: Options = DEFAULT_OPTIONS) -> LoadTestResult:
    """Boot ``image`` with ``subject`` in it and judge what the guest and kernel said."""
    token = secrets.token_hex(6)
    try:
        artifact = subject.artifact.read_bytes()
        scap_open = userspace.scap_open.read_bytes()
    except OSError as exc:
        raise LoadTestError(f"cannot read what the guest needs: {exc}") from exc
    archive = initramfs.encode(entries(subject, artifact, scap_open, static_busybox(),
                                       params(subject, userspace, token, options)))
    initrd = vm_log.with_name(f".{vm_log.name}.initrd-{token}")
    initrd.parent.mkdir(parents=True, exist_ok=True)
    try:
        # this run's throwaway, read by this boot only and removed after it: no fsync
        with initrd.open("xb") as handle:
            handle.write(archive)
        machine = qemu.Machine(image.path, initrd, APPEND, options.cpus, options.memory_mb,
                               options.accel)
        boot = qemu.boot(machine, vm_log, timeout=options.timeout)
    finally:
        initrd.unlink(missing_ok=True)
    found = scan.verdict(vm_log.read_text(errors="replace"), kind=str(subject.kind),
                         token=token, markers=options.markers)
    reasons = found.reasons
    if boot.timed_out:
        reasons = (*reasons, f"the VM ran past {options.timeout:.0f} s and was stopped")
    outcome = Outcome.PASSED if found.passed and not boot.timed_out else Outcome.FAILED
    known = compat.userspace_cannot_read(str(subject.kind), userspace.libs_version, reasons)
    if outcome is Outcome.FAILED and found.loaded and known:
        outcome, reasons = Outcome.LOADED, (*reasons, known)
    return LoadTestResult(
        outcome,
        str(subject.kind), reasons, found.loaded, found.events, found.drops,
        found.markers_found, options.markers, boot.seconds,
        found.kernel_release or image.release, image.sha256, userspace.libs_version,
        vm_log=str(vm_log),
    )
