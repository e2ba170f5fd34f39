"""The QEMU adapter on the real qemu-system-x86_64 and a real Debian kernel: a guest that
never powers off is stopped at the timeout with its console kept; QEMU refusing to start
becomes VmError with its own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.edges.vm import kernelimage, qemu
from reconciler.errors import VmError
from reconciler.loadtest import guest, initramfs
from tests.support import kernelpkg
from tests.support.loadtest import require_vm


def test_a_guest_that_never_powers_off_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    require_vm()
    (deb,) = kernelpkg.require(1)
    image = kernelimage.from_package(deb.deb, tmp_path / "images")
    init = (b"#!/bin/busybox sh\n/bin/busybox echo guest-up\n"
            b"while :; do /bin/busybox sleep 1; done\n")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(initramfs.encode([
        initramfs.Entry.folder("bin"), initramfs.Entry.folder("dev"),
        initramfs.Entry.char_device("dev/console", 5, 1),
        initramfs.Entry.file("bin/busybox", guest.static_busybox(), executable=True),
        initramfs.Entry.file("init", init, executable=True),
    ]))
    # long enough for the guest to print (about 2 s), short to keep the suite quick
    boot = qemu.boot(qemu.Machine(image.path, initrd, guest.APPEND), tmp_path / "vm.log",
                     timeout=20)
    assert boot.timed_out
    assert "guest-up" in boot.log.read_text(errors="replace")


def test_qemu_refusing_to_start_is_a_vm_error_with_its_words(tmp_path: Path) -> None:
    require_vm()
    machine = qemu.Machine(tmp_path / "no-such-kernel", tmp_path / "no-initrd", "")
    with pytest.raises(VmError, match="no-such-kernel"):
        qemu.boot(machine, tmp_path / "vm.log", timeout=60)
