"""The store's opener: files reached from the store root by descriptor, never by a symlink.

A file at ``<driverVersion>/<arch>/<name>`` is opened component by component from the
store root with ``O_NOFOLLOW`` (the store never makes a symlink, so none below the root is
ever followed), must be a regular file, and its ``<file>.sha256`` sidecar (``sha256sum``
format, a regular file beside it, at most ``SIDECAR_MAX`` bytes) is read through the same
folder descriptor. Whether the pair verifies is the verifier's answer (``verifier``). A
path with an empty, ``.``, ``..``, ``/`` or NUL part is refused before anything is opened.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges.store.verifier import Verifier, digest_in
from reconciler.errors import StoreBusy, StoreError
from reconciler.model import artifacts
from reconciler.model.artifacts import ArtifactKey

SHA_SUFFIX = artifacts.SHA_SUFFIX  # the model's rule, named here for the store's callers
# A load test's result beside its artifact (reconciler.loadtest), read into index.json.
LOAD_TEST_SUFFIX = ".loadtest.json"
SIDECAR_MAX = 4096

_OPEN_ROOT = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True)
class OpenFile:
    """A regular file opened inside the store; the caller owns (and closes) ``fd``."""

    fd: int
    relpath: str
    size: int
    mtime: float
    sha256: str  # the artifact's digest (for a sidecar: the digest it names)

    def close(self) -> None:
        os.close(self.fd)


_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


def absent_unless_exhausted(exc: OSError) -> None:
    """A failed open means "not there", unless the process is out of descriptors or
    memory: that is ``StoreBusy``, so a server never answers "absent" for a file it holds
    (also os.walk's ``onerror``: a list of the store must not be shorter for want of
    descriptors)."""
    if exc.errno in _EXHAUSTED:
        raise StoreBusy(f"cannot open store files now: {exc.strerror}") from exc


def safe_part(part: str) -> bool:
    return bool(part) and part not in (".", "..") and "/" not in part and "\0" not in part


def _open_parents(root: str, parts: list[str]) -> list[int]:
    """Descriptors of the root and of each folder in ``parts[:-1]``, opened without
    following a symlink below the root; the caller closes them. Raises OSError (ELOOP
    on a symlink)."""
    fds = [os.open(root, _OPEN_ROOT)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, _OPEN_DIR, dir_fd=fds[-1]))
    except OSError:
        for opened in fds:
            os.close(opened)
        raise
    return fds


def _read_small(name: str, dir_fd: int) -> bytes:
    fd = os.open(name, OPEN_FILE, dir_fd=dir_fd)
    try:
        return os.read(fd, SIDECAR_MAX)
    finally:
        os.close(fd)


def open_artifact(root: str, relpath: str, verifier: Verifier) -> OpenFile | None:
    """The artifact at ``relpath`` opened, if it is a regular file that verifies."""
    parts = relpath.split("/")
    if not all(safe_part(p) for p in parts):
        return None
    name = parts[-1]
    try:
        fds = _open_parents(root, parts)
    except OSError as exc:  # ENOENT, ELOOP (symlink), ENOTDIR, EACCES...: nothing to open
        absent_unless_exhausted(exc)
        return None
    parent = fds[-1]
    try:
        fd = os.open(name, OPEN_FILE, dir_fd=parent)
    except OSError as exc:
        for opened in fds:
            os.close(opened)
        absent_unless_exhausted(exc)
        return None
    digest: str | None = None
    busy: OSError | None = None
    try:
        st = os.fstat(fd)
        side_name = name + SHA_SUFFIX
        side_st = os.stat(side_name, dir_fd=parent, follow_symlinks=False)
        if (stat.S_ISREG(st.st_mode) and stat.S_ISREG(side_st.st_mode)
                and side_st.st_size <= SIDECAR_MAX):
            digest = verifier.verified_digest(
                fd, st, side_st, lambda: _read_small(side_name, parent))
    except OSError as exc:
        digest = None
        busy = exc
    finally:
        for opened in fds:
            os.close(opened)
    if busy is not None and busy.errno in _EXHAUSTED:
        os.close(fd)
        absent_unless_exhausted(busy)
    if digest is None:
        os.close(fd)
        return None
    return OpenFile(fd, relpath, st.st_size, st.st_mtime, digest)


def open_sidecar(root: str, relpath: str) -> OpenFile | None:
    """The ``.sha256`` file at ``relpath`` opened, if well-formed (its artifact may be
    missing: a publish writes the sidecar first)."""
    parts = relpath.split("/")
    if not all(safe_part(p) for p in parts):
        return None
    try:
        fds = _open_parents(root, parts)
    except OSError as exc:
        absent_unless_exhausted(exc)
        return None
    try:
        fd = os.open(parts[-1], OPEN_FILE, dir_fd=fds[-1])
    except OSError as exc:
        absent_unless_exhausted(exc)
        return None
    finally:
        for opened in fds:
            os.close(opened)
    st = os.fstat(fd)
    text = os.pread(fd, SIDECAR_MAX, 0) if (
        stat.S_ISREG(st.st_mode) and st.st_size <= SIDECAR_MAX) else b""
    digest = digest_in(text)
    if digest is None:
        os.close(fd)
        return None
    return OpenFile(fd, relpath, st.st_size, st.st_mtime, digest)


def unsafe_folder(root: Path, key: ArtifactKey) -> str | None:
    """The store folder on ``key``'s path that is a symlink or not a folder, if any."""
    relative = ""
    for part in (key.driver_version, key.arch):
        relative = f"{relative}/{part}" if relative else part
        try:
            mode = os.lstat(root / relative).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {root / relative}: {exc.strerror}") from exc
        if not stat.S_ISDIR(mode):
            return relative
    return None


def checksummed(path: Path) -> bool:
    """A regular file with a sidecar that names a digest (not hashed: a cheap check)."""
    if not path.is_file():
        return False
    try:
        with path.with_name(path.name + SHA_SUFFIX).open("rb") as handle:
            return digest_in(handle.read(SIDECAR_MAX)) is not None
    except OSError:
        return False


def open_file(path: Path) -> int | None:
    """A descriptor of the file at ``path`` (never through a final symlink), or None."""
    try:
        return os.open(path, OPEN_FILE)
    except OSError:
        return None
