"""The store's verifier: which files hash to what their sidecar names, remembered.

Hashing a 3 MB file on every request or pass would cost more than serving it, so verdicts
are cached by the identity of both files (device, inode, size, mtime, ctime); a publish
replaces the inode, which invalidates the entry. What a file carries (its driver identity,
``model.driverfile``; a module's appended signature, ``model.modsig``) is read through the
same descriptor, a few small reads, and cached the same way: no second record can drift
from the file it describes. The verifier reads and remembers; what a reading means for a
plan (present, corrupt, a misfit, unsigned) is ``observe.stored``'s to decide.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from reconciler.errors import InvalidDriver, InvalidSignature
from reconciler.model import driverfile, modsig
from reconciler.model.artifacts import DriverKind
from reconciler.model.stored import Signature
from reconciler.model.versions import DriverIdentity

StatKey = tuple[int, int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    """A file as it is now: a cached check holds while it holds (a publish makes a new
    inode)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_fd(fd: int, size: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def digest_in(text: bytes) -> str | None:
    """The sha256 a ``sha256sum`` line names, or None if it is not one."""
    fields = text.split()
    digest = fields[0].decode("ascii", "replace").lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest


def sha256sum_line(digest: str, filename: str) -> str:
    """One line as ``sha256sum`` writes it (two spaces: text mode)."""
    return f"{digest}  {filename}\n"


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Memo(Generic[_K, _V]):
    """The ``size`` most recently used results of a computation, shared by threads; the
    computation runs outside the lock (two threads may both compute a new key)."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: _K, compute: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class Verifier:
    """Remembers which (artifact, sidecar) pairs verified, keyed by both files' identity,
    and what each file carries (identity, signature), keyed by its own."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._sidecar_checks: _Memo[tuple[StatKey, StatKey], str | None] = (
            _Memo(max_entries))
        self._identities: _Memo[tuple[StatKey, DriverKind], DriverIdentity | None] = (
            _Memo(max_entries))
        self._signatures: _Memo[StatKey, Signature] = _Memo(max_entries)

    def module_signature(self, fd: int, st: os.stat_result) -> Signature:
        """The appended signature of the open module (None if unsigned), read once."""

        def read() -> Signature:
            length = min(st.st_size, modsig.MAX_SIGNATURE + 64)
            try:
                return modsig.read_signature(os.pread(fd, length, st.st_size - length),
                                             st.st_size)
            except InvalidSignature as exc:
                return str(exc)
            except OSError:
                return None

        return self._signatures.get(stat_key(st), read)

    def driver_identity(self, fd: int, st: os.stat_result, kind: DriverKind) -> (
            DriverIdentity | None):
        """The identity the open file carries (None if none), read once per file."""

        def read() -> DriverIdentity | None:
            try:
                info = driverfile.read_elf_from(
                    lambda offset, size: os.pread(fd, size, offset), st.st_size,
                    only=driverfile.identity_sections(kind))
                return driverfile.identity(info, kind)
            except (InvalidDriver, OSError, OverflowError):
                return None

        return self._identities.get((stat_key(st), kind), read)

    def verified_digest(
        self, fd: int, st: os.stat_result, side_st: os.stat_result,
        read_sidecar: Callable[[], bytes],
    ) -> str | None:
        """The artifact's sha256 if its sidecar names exactly that digest, else None.
        Only a pair never seen before is read and hashed."""

        def verdict() -> str | None:
            expected = digest_in(read_sidecar())
            return expected if expected and sha256_fd(fd, st.st_size) == expected else None

        return self._sidecar_checks.get((stat_key(st), stat_key(side_st)), verdict)
