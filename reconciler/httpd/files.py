"""Opening store files for the server: inside the store, regular, verified, served from the fd.

A file is opened once, component by component from the store root with ``O_NOFOLLOW``, so
no symlink anywhere below the root is followed (the store never makes symlinks: ``Store``
treats one as absent too). Everything after that (``fstat``, hashing, ``sendfile``) uses
the descriptor, never the name again: if a publish renames a new artifact over the old one
mid-download, the client still gets the whole old file.

An artifact is served only when it verifies: its ``.sha256`` sidecar is well-formed and
matches the file's content. Hashing 3 MB on every request would cost more than sending it,
so verdicts are cached by the identity of both files (device, inode, size, mtime, ctime);
a publish replaces the inode, which invalidates the entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges import atomic
from reconciler.edges.store import SHA_SUFFIX
from reconciler.model import artifacts

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_SIDECAR_MAX = 4096

Identity = tuple[int, int, int, int, int]


def _read_small(name: str, dir_fd: int) -> bytes:
    fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    try:
        return os.read(fd, _SIDECAR_MAX)
    finally:
        os.close(fd)


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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


def _open_parents(root: str, parts: list[str]) -> list[int]:
    """Descriptors of root and of each folder in ``parts[:-1]``, opened without following
    a symlink below root; the caller closes them. Raises OSError (ELOOP on a symlink)."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, _OPEN_DIR, dir_fd=fds[-1]))
    except OSError:
        for opened in fds:
            os.close(opened)
        raise
    return fds


def open_beneath(root: Path, relpath: str) -> tuple[int, os.stat_result] | None:
    """Open ``root/relpath`` read-only without following any symlink below ``root``.

    Returns the fd and its ``fstat``, or None when it does not exist, is not a regular
    file, or a component is a symlink. ``root`` itself may be a symlink (the operator's).
    """
    parts = relpath.split("/")
    try:
        fds = _open_parents(str(root), parts)
    except OSError:  # ENOENT, ELOOP (symlink), ENOTDIR, EACCES...: nothing to serve
        return None
    try:
        fd = os.open(parts[-1], _OPEN_FILE, dir_fd=fds[-1])
    except OSError:
        return None
    finally:
        for opened in fds:
            os.close(opened)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def digest_in(text: bytes) -> str | None:
    """The sha256 a ``sha256sum`` line names, or None if it is not one."""
    fields = text.split()
    digest = fields[0].decode("ascii", "replace").lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest


def _sha256_fd(fd: int, size: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


class Verifier:
    """Remembers which (artifact, sidecar) pairs verified, keyed by both files' identity."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._verdicts: OrderedDict[tuple[Identity, Identity], str | None] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def verified_digest(
        self, fd: int, st: os.stat_result, side_st: os.stat_result,
        read_sidecar: Callable[[], bytes],
    ) -> str | None:
        """The artifact's sha256 if its sidecar names exactly that digest, else None.
        Only a pair never seen before is read and hashed."""
        key = (identity(st), identity(side_st))
        with self._lock:
            if key in self._verdicts:
                self._verdicts.move_to_end(key)
                return self._verdicts[key]
        expected = digest_in(read_sidecar())
        verdict = expected if expected and _sha256_fd(fd, st.st_size) == expected else None
        with self._lock:
            self._verdicts[key] = verdict
            while len(self._verdicts) > self._max:
                self._verdicts.popitem(last=False)
        return verdict


class StoreFiles:
    """The server's read-only view of a store folder."""

    def __init__(self, root: Path, verifier: Verifier | None = None) -> None:
        self.root = root
        self._root = str(root)
        self.verifier = verifier or Verifier()

    def open_artifact(self, relpath: str) -> OpenFile | None:
        """The artifact at ``relpath`` opened, if it is a regular file that verifies.

        The sidecar is looked at through the same folder descriptor, so neither file is
        reached through a symlink."""
        parts = relpath.split("/")
        name = parts[-1]
        try:
            fds = _open_parents(self._root, parts)
        except OSError:
            return None
        parent = fds[-1]
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=parent)
        except OSError:
            for opened in fds:
                os.close(opened)
            return None
        digest: str | None = None
        try:
            st = os.fstat(fd)
            side_name = name + SHA_SUFFIX
            side_st = os.stat(side_name, dir_fd=parent, follow_symlinks=False)
            if (stat.S_ISREG(st.st_mode) and stat.S_ISREG(side_st.st_mode)
                    and side_st.st_size <= _SIDECAR_MAX):
                digest = self.verifier.verified_digest(
                    fd, st, side_st, lambda: _read_small(side_name, parent))
        except OSError:
            digest = None
        finally:
            for opened in fds:
                os.close(opened)
        if digest is None:
            os.close(fd)
            return None
        return OpenFile(fd, relpath, st.st_size, st.st_mtime, digest)

    def open_sidecar(self, relpath: str) -> OpenFile | None:
        """The ``.sha256`` file at ``relpath`` opened, if well-formed (its artifact may be
        missing: a publish writes the sidecar first)."""
        opened = open_beneath(self.root, relpath)
        if opened is None:
            return None
        fd, st = opened
        text = os.pread(fd, _SIDECAR_MAX, 0) if st.st_size <= _SIDECAR_MAX else b""
        digest = digest_in(text)
        if digest is None:
            os.close(fd)
            return None
        return OpenFile(fd, relpath, st.st_size, st.st_mtime, digest)

    def readable(self) -> bool:
        """True when the store root is a folder we can list."""
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError:
            return False
        return True

    def _artifact_relpaths(self) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if atomic.is_partial(name) or name.startswith("."):
                    continue
                relpath = Path(dirpath, name).relative_to(self.root).as_posix()
                if artifacts.parse_relpath(relpath) is not None:
                    yield relpath

    def index(self) -> list[dict[str, object]]:
        """Every artifact that verifies: store path, URL path, size, sha256, build time."""
        entries: list[dict[str, object]] = []
        for relpath in self._artifact_relpaths():
            key = artifacts.parse_relpath(relpath)
            opened = self.open_artifact(relpath)
            if key is None or opened is None:
                continue
            with contextlib.closing(opened):
                built = dt.datetime.fromtimestamp(opened.mtime, dt.UTC)
                entries.append({
                    "path": relpath,
                    "url": key.url_path(),
                    "driverVersion": key.driver_version,
                    "arch": key.arch,
                    "kind": key.kind.value,
                    "size": opened.size,
                    "sha256": opened.sha256,
                    "buildTime": built.isoformat(timespec="seconds").replace("+00:00", "Z"),
                })
        return entries

    def index_json(self) -> bytes:
        body = {"artifacts": self.index()}
        return (json.dumps(body, indent=2, sort_keys=False) + "\n").encode("utf-8")
