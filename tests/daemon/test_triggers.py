"""The daemon sees a kernel installed under the host root at once (real inotify).

What a package manager does is done here for real on a host root of the test's: dpkg
unpacks each file under ``<name>.dpkg-new`` and renames it into place; a new release gets
its ``lib/modules/<release>/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon.triggers import FileWatches
from reconciler.daemon.wakeup import Wakeup


def test_a_kernel_unpacked_by_the_package_manager_wakes_the_loop(tmp_path: Path) -> None:
    for rel in ("boot", "lib/modules"):
        (tmp_path / rel).mkdir(parents=True)
    wakeup = Wakeup(debounce=0.05)
    watches = FileWatches(wakeup)
    watches.kernels(tmp_path)
    watches.start()
    try:
        assert watches.watching == [str(tmp_path / "boot"), str(tmp_path / "lib/modules")]
        (tmp_path / "lib/modules/6.1.0-58-cloud-amd64").mkdir()
        assert wakeup.wait(5) == {"kernel"}

        temp = tmp_path / "boot/vmlinuz-6.1.0-58-cloud-amd64.dpkg-new"
        temp.write_bytes(b"MZ" + bytes(4096))
        assert wakeup.wait(0.5) == set()  # dpkg's temp file is not the kernel yet
        temp.rename(tmp_path / "boot/vmlinuz-6.1.0-58-cloud-amd64")
        assert wakeup.wait(5) == {"kernel"}

        (tmp_path / "boot/vmlinuz-6.1.0-58-cloud-amd64").unlink()  # apt autoremove
        assert wakeup.wait(5) == {"kernel"}
    finally:
        watches.stop()


def test_kernel_folders_that_do_not_exist_are_not_watched(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/modules").mkdir(parents=True)  # an ostree layout: no boot/
    watches = FileWatches(Wakeup())
    watches.kernels(tmp_path)
    assert watches.watching == [str(tmp_path / "usr/lib/modules")]
