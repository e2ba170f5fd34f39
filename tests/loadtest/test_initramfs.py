"""The cpio "newc" encoder, checked field by field against the format the kernel unpacks
(the real kernel unpacks it in every VM test)."""

from __future__ import annotations

import stat

from reconciler.loadtest import initramfs


def members(archive: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, (rdevmajor, rdevminor)) of each member, read by the format."""
    found, at = [], 0
    while True:
        assert archive[at:at + 6] == b"070701"
        fields = [int(archive[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, major, minor, namesize = (fields[1], fields[6], fields[9], fields[10],
                                              fields[11])
        name_at = at + 110
        name = archive[name_at:name_at + namesize - 1].decode()
        assert archive[name_at + namesize - 1] == 0
        data_at = name_at + namesize + (-(110 + namesize) % 4)
        found.append((name, mode, archive[data_at:data_at + size], (major, minor)))
        at = data_at + size + (-size % 4)
        if name == "TRAILER!!!":
            assert at == len(archive)
            return found


def test_folders_files_and_the_console_device_come_out_as_written() -> None:
    archive = initramfs.encode([
        initramfs.Entry.folder("dev"),
        initramfs.Entry.char_device("dev/console", 5, 1),
        initramfs.Entry.file("/init", b"#!/bin/busybox sh\n", executable=True),
        initramfs.Entry.file("loadtest/params", b"KIND=kmod\n"),
    ])
    assert len(archive) % 4 == 0
    got = members(archive)
    assert [name for name, *_ in got] == ["dev", "dev/console", "init", "loadtest/params",
                                          "TRAILER!!!"]
    (_, dev_mode, _, _), (_, con_mode, _, con_dev), (_, init_mode, init, _) = got[:3]
    assert stat.S_ISDIR(dev_mode)
    assert stat.S_ISCHR(con_mode) and con_dev == (5, 1)
    assert stat.S_IMODE(init_mode) == 0o755 and init == b"#!/bin/busybox sh\n"
    assert stat.S_IMODE(got[3][1]) == 0o644 and got[3][2] == b"KIND=kmod\n"


def test_a_symlink_stores_its_target_as_its_data() -> None:
    # the guest's /bin/grep and the like are links to /bin/busybox, unpacked by the kernel
    (link, _trailer) = members(initramfs.encode([initramfs.Entry.symlink("bin/grep", "busybox")]))
    name, mode, data, _ = link
    assert name == "bin/grep" and stat.S_ISLNK(mode) and data == b"busybox"
