"""Never half-done files: write beside the target under a temp name, fsync, rename.

Temp names start with ``.`` and carry ``.partial-``, so the store scan, the server and
the next start all recognise (and ignore or clean) what an interrupted write left.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PARTIAL_MARK = ".partial-"


def temp_name_for(target: Path) -> Path:
    return target.with_name(f".{target.name}{PARTIAL_MARK}{secrets.token_hex(4)}")


def is_partial(name: str) -> bool:
    return name.startswith(".") and PARTIAL_MARK in name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(target: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a file; on clean exit it replaces ``target`` whole, on error it vanishes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name_for(target)
    try:
        with temp.open("xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temp.chmod(mode)
        temp.replace(target)
        _fsync_dir(target.parent)
    finally:
        # After a successful replace the temp is gone; after a failure it must go.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_bytes(target: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(target, mode) as handle:
        handle.write(data)


def copy_file(source: Path, target: Path, mode: int = 0o644) -> None:
    with source.open("rb") as src, atomic_writer(target, mode) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def move_into_place(temp: Path, target: Path, mode: int = 0o644) -> None:
    """Make ``temp`` (written beside ``target`` under a temp name) ``target``: synced,
    given ``mode``, renamed, the folder synced."""
    if temp.parent != target.parent:
        raise ValueError(f"{temp} is not beside {target}: a rename would not be atomic")
    fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.chmod(mode)
    temp.replace(target)
    _fsync_dir(target.parent)
