"""The guest's initramfs: an uncompressed cpio archive (the kernel's "newc" format).

Written here rather than by a ``cpio`` binary: the format is a fixed ASCII header per
entry, every entry is known up front (busybox and links to it, the init script, the driver,
scap-open, the run's parameters), and a pure encoder can be tested without a VM.
``/dev/console`` is in the archive because the kernel opens it for init before devtmpfs is
mounted.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One file, folder, symbolic link or character device of the archive (``path``
    without a leading /)."""

    path: str
    mode: int
    data: bytes = b""
    device: tuple[int, int] = (0, 0)  # (major, minor) of a character device

    @classmethod
    def folder(cls, path: str) -> Entry:
        return cls(path, stat.S_IFDIR | 0o755)

    @classmethod
    def file(cls, path: str, data: bytes, *, executable: bool = False) -> Entry:
        return cls(path, stat.S_IFREG | (0o755 if executable else 0o644), data)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        """A symbolic link (the archive stores its target as the entry's data)."""
        return cls(path, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def char_device(cls, path: str, major: int, minor: int) -> Entry:
        return cls(path, stat.S_IFCHR | 0o600, device=(major, minor))


def encode(entries: Iterable[Entry]) -> bytes:
    """The archive: each entry's header, name and data (each padded to 4 bytes), then the
    trailer. Folders must come before what they hold, as the kernel unpacks in order."""
    parts: list[bytes] = []
    inode = 1
    for entry in entries:
        parts.append(_member(entry, inode))
        inode += 1
    parts.append(_member(Entry(_TRAILER, 0), 0))
    return b"".join(parts)


def _member(entry: Entry, inode: int) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    links = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (inode, entry.mode, 0, 0, links, 0, len(entry.data), 0, 0,
              entry.device[0], entry.device[1], len(name), 0)
    header = _MAGIC + b"".join(b"%08X" % value for value in fields)
    return _pad(header + name) + _pad(entry.data)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)
