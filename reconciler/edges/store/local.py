"""The local driver store: artifacts laid out as Falco downloads them, each verified.

This module holds the one definition of a verified artifact, used by the plan, the
builder, the deployer and the server alike: the file at ``<driverVersion>/<arch>/<name>``,
opened component by component from the store root with ``O_NOFOLLOW`` (so no symlink
below the root is ever followed: the store never makes one), is a regular file, and its
``<file>.sha256`` sidecar (``sha256sum`` format, a regular file beside it) names exactly
the digest of its content. Hashing a 3 MB file on every request or pass would cost more
than serving it, so verdicts are cached by the identity of both files (device, inode,
size, mtime, ctime); a publish replaces the inode, which invalidates the entry.

An artifact's identity (its API and schema version, ``model.driverfile``) is read from
the file itself (a module's ``.modinfo``, a probe's own sections), a few small reads
through the same descriptor, cached like the verdicts: no second record can drift from
the file it describes. An artifact whose identity its driver version does not accept is
corrupt to the plan, as a failed checksum is; a file that carries no readable identity
cannot be judged by it and is left to the checksum alone.

Who signed a module is read from the file too: the signature appended to it
(``model.modsig``), cached the same way. A module wanted signed by a certificate is
usable only when its signature names that certificate's issuer and serial; any module
is usable where no signature is wanted (a signed module loads on every kernel).

Publishing is atomic (``edges.atomic``): the sidecar goes in first, then the artifact, each
by rename, so a reader never sees an artifact without the checksum that proves it. Every
key's path is checked to lie strictly inside the store before anything is read or
written (``path_of``), whatever the caller: a key with a ``/``, a ``..`` or a NUL in a
part is a ``StoreError``, never a path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from reconciler.edges import atomic
from reconciler.errors import InvalidDriver, InvalidSignature, StoreBusy, StoreError
from reconciler.model import artifacts, driverfile, modsig, versions
from reconciler.model.artifacts import ArtifactKey, DriverKind, parse_relpath
from reconciler.model.versions import DriverIdentity

SHA_SUFFIX = artifacts.SHA_SUFFIX  # the model's rule, named here for the store's callers
# A load test's result beside its artifact (reconciler.loadtest), read into index.json.
LOAD_TEST_SUFFIX = ".loadtest.json"
SIDECAR_MAX = 4096

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

# A file as it is now (device, inode, size, mtime, ctime): a cached check holds while it holds.
StatKey = tuple[int, int, int, int, int]
# What a module's appended signature says; a str when it is there but cannot be read.
Signature = modsig.ModuleSignature | str | None
# The signer a module must carry; a str says why the wanted one cannot be known.
WantedSigner = modsig.Signer | str


@dataclass(frozen=True)
class StoredArtifact:
    key: ArtifactKey
    path: Path
    size: int
    sha256: str
    mtime: float
    identity: DriverIdentity | None = None  # None: the file carries none we can read
    signature: Signature = None  # a module's appended signature; None: unsigned

    def signing_problem(self, wanted: WantedSigner | None) -> str | None:
        """Why this artifact is not signed as ``wanted``, or None (see ``Store.usable``)."""
        return signing_problem(self.signature, wanted) if self.key.kind is DriverKind.KMOD \
            else None

    @property
    def misfit(self) -> str | None:
        """Why its identity cannot be its driver version, or None (see ``Store.usable``)."""
        if self.identity is None:
            return None
        return versions.identity_problem(self.key.driver_version, self.identity)


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


def _absent_unless_exhausted(exc: OSError) -> None:
    """A failed open means "not there", unless the process is out of descriptors or
    memory: that is ``StoreBusy``, so a server never answers "absent" for a file it holds."""
    if exc.errno in _EXHAUSTED:
        raise StoreBusy(f"cannot open store files now: {exc.strerror}") from exc


def _walk_error(exc: OSError) -> None:
    """os.walk skips a folder it cannot list; a list of the store must not be shorter
    for want of descriptors."""
    _absent_unless_exhausted(exc)


def signing_problem(found: Signature, wanted: WantedSigner | None) -> str | None:
    """Why a module whose signature is ``found`` is not signed by ``wanted``, or None."""
    if wanted is None:
        return None
    if isinstance(wanted, str):
        return wanted
    if found is None:
        return f"signed by {wanted} wanted, the store has an unsigned build"
    if isinstance(found, str):
        return f"signed by {wanted} wanted, the store's build has a signature that cannot " \
            f"be read ({found})"
    if found.signer != wanted:
        other = found.signer or f"subject key id {found.key_id}"
        return f"signed by {wanted} wanted, the store has a build signed by {other}"
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sum_line(digest: str, filename: str) -> str:
    """One line as ``sha256sum`` writes it (two spaces: text mode)."""
    return f"{digest}  {filename}\n"


def digest_in(text: bytes) -> str | None:
    """The sha256 a ``sha256sum`` line names, or None if it is not one."""
    fields = text.split()
    digest = fields[0].decode("ascii", "replace").lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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


def _read_small(name: str, dir_fd: int) -> bytes:
    fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    try:
        return os.read(fd, SIDECAR_MAX)
    finally:
        os.close(fd)


def _safe_part(part: str) -> bool:
    return bool(part) and part not in (".", "..") and "/" not in part and "\0" not in part


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
        self._sidecar_checks: _Memo[tuple[StatKey, StatKey], str | None] = _Memo(max_entries)
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
            return expected if expected and _sha256_fd(fd, st.st_size) == expected else None

        return self._sidecar_checks.get((stat_key(st), stat_key(side_st)), verdict)


class Store:
    """The driver store rooted at ``root`` (created on first publish)."""

    def __init__(self, root: Path, verifier: Verifier | None = None) -> None:
        self.root = Path(root)
        self._root = os.fspath(self.root)
        self.verifier = verifier or Verifier()

    # -- paths ------------------------------------------------------------------------

    def check(self, key: ArtifactKey) -> None:
        """StoreError unless ``key``'s path is strictly inside the store (string checks
        only: a plan checks tens of thousands of keys)."""
        if not (_safe_part(key.driver_version) and _safe_part(key.arch)
                and _safe_part(key.filename)):
            raise StoreError(f"refusing artifact {key.relpath!r}: a part of its name would "
                             "lead outside the store")

    def path_of(self, key: ArtifactKey) -> Path:
        """Where ``key`` lives; StoreError unless that is strictly inside the store."""
        self.check(key)
        return self.root / key.relpath

    def _open_parents(self, parts: list[str]) -> list[int]:
        """Descriptors of the root and of each folder in ``parts[:-1]``, opened without
        following a symlink below the root; the caller closes them. Raises OSError (ELOOP
        on a symlink)."""
        fds = [os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        try:
            for part in parts[:-1]:
                fds.append(os.open(part, _OPEN_DIR, dir_fd=fds[-1]))
        except OSError:
            for opened in fds:
                os.close(opened)
            raise
        return fds

    def unsafe_folder(self, key: ArtifactKey) -> str | None:
        """The store folder on ``key``'s path that is a symlink or not a folder, if any:
        such an artifact can never be served, so it is reported rather than rebuilt."""
        self.check(key)
        relative = ""
        for part in (key.driver_version, key.arch):
            relative = f"{relative}/{part}" if relative else part
            try:
                mode = os.lstat(self.root / relative).st_mode
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise StoreError(f"cannot read {self.root / relative}: {exc.strerror}") from exc
            if not stat.S_ISDIR(mode):
                return relative
        return None

    # -- the verified artifact ----------------------------------------------------------

    def open_artifact(self, relpath: str) -> OpenFile | None:
        """The artifact at ``relpath`` opened, if it is a regular file that verifies.

        Its sidecar is looked at through the same folder descriptor, so neither file is
        reached through a symlink."""
        parts = relpath.split("/")
        if not all(_safe_part(p) for p in parts):
            return None
        name = parts[-1]
        try:
            fds = self._open_parents(parts)
        except OSError as exc:  # ENOENT, ELOOP (symlink), ENOTDIR, EACCES...: nothing to serve
            _absent_unless_exhausted(exc)
            return None
        parent = fds[-1]
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=parent)
        except OSError as exc:
            for opened in fds:
                os.close(opened)
            _absent_unless_exhausted(exc)
            return None
        digest: str | None = None
        busy: OSError | None = None
        try:
            st = os.fstat(fd)
            side_name = name + SHA_SUFFIX
            side_st = os.stat(side_name, dir_fd=parent, follow_symlinks=False)
            if (stat.S_ISREG(st.st_mode) and stat.S_ISREG(side_st.st_mode)
                    and side_st.st_size <= SIDECAR_MAX):
                digest = self.verifier.verified_digest(
                    fd, st, side_st, lambda: _read_small(side_name, parent))
        except OSError as exc:
            digest = None
            busy = exc
        finally:
            for opened in fds:
                os.close(opened)
        if busy is not None and busy.errno in _EXHAUSTED:
            os.close(fd)
            _absent_unless_exhausted(busy)
        if digest is None:
            os.close(fd)
            return None
        return OpenFile(fd, relpath, st.st_size, st.st_mtime, digest)

    def open_sidecar(self, relpath: str) -> OpenFile | None:
        """The ``.sha256`` file at ``relpath`` opened, if well-formed (its artifact may be
        missing: a publish writes the sidecar first)."""
        parts = relpath.split("/")
        if not all(_safe_part(p) for p in parts):
            return None
        try:
            fds = self._open_parents(parts)
        except OSError as exc:
            _absent_unless_exhausted(exc)
            return None
        try:
            fd = os.open(parts[-1], _OPEN_FILE, dir_fd=fds[-1])
        except OSError as exc:
            _absent_unless_exhausted(exc)
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

    def lookup(self, key: ArtifactKey) -> StoredArtifact | None:
        """The artifact if it is present and verifies (the definition above), else None."""
        path = self.path_of(key)
        opened = self.open_artifact(key.relpath)
        if opened is None:
            return None
        with contextlib.closing(opened):
            return StoredArtifact(key, path, opened.size, opened.sha256, opened.mtime,
                                  self.identity_of(opened, key.kind),
                                  self.signature_of(opened, key.kind))

    def usable(self, key: ArtifactKey, signer: WantedSigner | None = None) -> (
            StoredArtifact | None):
        """The artifact if it verifies, its identity (when it carries one) fits its
        driver version and, for a module wanted signed by ``signer``, it is: what the plan
        counts as present and a build need not redo."""
        found = self.lookup(key)
        if found is None or found.misfit is not None or found.signing_problem(signer):
            return None
        return found

    def signature_of(self, opened: OpenFile, kind: DriverKind) -> Signature:
        """A module's appended signature (None for a probe or an unsigned module)."""
        if kind is not DriverKind.KMOD:
            return None
        try:
            st = os.fstat(opened.fd)
        except OSError:
            return None
        return self.verifier.module_signature(opened.fd, st)

    def identity_of(self, opened: OpenFile, kind: DriverKind) -> DriverIdentity | None:
        """The identity an opened artifact carries (cached by the file's identity)."""
        try:
            st = os.fstat(opened.fd)
        except OSError:
            return None
        return self.verifier.driver_identity(opened.fd, st, kind)

    def module_version(self, key: ArtifactKey) -> str | None:
        """The ``version`` a stored module declares in its ``.modinfo`` (what the kernel
        shows in ``/sys/module/<name>/version`` once it is inserted); None if the artifact
        is absent, not a module, or declares none. A Debian package's build says its libs
        release there (``0.20.0``), a libs release tree's build the driver version."""
        if key.kind is not DriverKind.KMOD:
            return None
        opened = self.open_artifact(key.relpath)
        if opened is None:
            return None
        with contextlib.closing(opened):
            try:
                info = driverfile.read_elf_from(
                    lambda offset, size: os.pread(opened.fd, size, offset), opened.size,
                    only=(".modinfo",))
            except (InvalidDriver, OSError, OverflowError):
                return None
        return driverfile.modinfo(info).get("version") or None

    def misfit(self, key: ArtifactKey, path: Path | None = None) -> str | None:
        """Why the artifact at ``key`` cannot be its driver version by the identity it
        carries, or None (it fits, carries none, or the version is not in the table)."""
        if versions.required_identity(key.driver_version) is None:
            return None
        found = self._identity_at(path or self.path_of(key), key.kind)
        return None if found is None else versions.identity_problem(key.driver_version, found)

    def _identity_at(self, path: Path, kind: DriverKind) -> DriverIdentity | None:
        try:
            fd = os.open(path, _OPEN_FILE)
        except OSError:
            return None
        try:
            return self.verifier.driver_identity(fd, os.fstat(fd), kind)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _signature_at(self, path: Path, kind: DriverKind) -> Signature:
        if kind is not DriverKind.KMOD:
            return None
        try:
            fd = os.open(path, _OPEN_FILE)
        except OSError:
            return None
        try:
            return self.verifier.module_signature(fd, os.fstat(fd))
        except OSError:
            return None
        finally:
            os.close(fd)

    def readable(self) -> bool:
        """True when the store root is a folder we can list (what ``/healthz`` says)."""
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
        except OSError:
            return False
        return True

    def artifact_paths(self) -> Iterator[tuple[ArtifactKey, Path]]:
        """Every file named like an artifact, verified or not (symlinked folders are not
        descended into), in a stable order."""
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=_walk_error):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = parse_relpath(path.relative_to(self.root).as_posix())
                if key is not None:
                    yield key, path

    # -- changes ----------------------------------------------------------------------

    def publish(self, key: ArtifactKey, source: Path, *, move: bool = False) -> StoredArtifact:
        """Copy ``source`` into the store as ``key``, atomically, with its checksum. With
        ``move``, ``source`` is a temp file in ``key``'s own folder (a download,
        ``atomic.temp_name_for``): it is synced and renamed into place instead of copied."""
        target = self.path_of(key)
        folder = self.unsafe_folder(key)
        if folder is not None:
            raise StoreError(f"cannot publish {key.relpath}: {self.root / folder} is a symlink "
                             "or not a folder, and the store never follows one")
        try:
            digest = sha256_file(source)
            atomic.write_bytes(
                target.with_name(target.name + SHA_SUFFIX),
                sha256sum_line(digest, target.name).encode("ascii"),
            )
            if move:
                atomic.move_into_place(source, target)
            else:
                atomic.copy_file(source, target)
            st = target.stat()
        except OSError as exc:
            raise StoreError(f"cannot publish {key.relpath}: {exc}") from exc
        return StoredArtifact(key, target, st.st_size, digest, st.st_mtime,
                              self._identity_at(target, key.kind),
                              self._signature_at(target, key.kind))

    def remove(self, key: ArtifactKey) -> None:
        target = self.path_of(key)
        try:
            for path in (target, target.with_name(target.name + SHA_SUFFIX),
                         target.with_name(target.name + LOAD_TEST_SUFFIX)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        except OSError as exc:
            raise StoreError(f"cannot remove {key.relpath}: {exc}") from exc

    def clean_partials(self) -> int:
        """Remove temp files an interrupted publish left; returns how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _dirs, filenames in os.walk(self.root):
            for name in filenames:
                if atomic.is_partial(name):
                    with contextlib.suppress(FileNotFoundError):
                        (Path(dirpath) / name).unlink()
                        removed += 1
        return removed


@dataclass(frozen=True)
class Observation:
    """What the store holds of interest to a plan."""

    present: frozenset[ArtifactKey]
    corrupt: frozenset[ArtifactKey]  # a file is there, but it does not verify
    unsafe: tuple[tuple[ArtifactKey, str], ...]  # wanted, behind a symlinked folder
    # Wanted, verifying, but carrying an identity its driver version refuses (why): corrupt
    # to the plan all the same, with its own reason.
    misfits: tuple[tuple[ArtifactKey, str], ...] = ()
    # Every file named like an artifact, verified or not (what retention looks at).
    stored: frozenset[ArtifactKey] = frozenset()
    # Wanted signed by a certificate, verifying, but unsigned or signed by another (why).
    unsigned: tuple[tuple[ArtifactKey, str], ...] = ()


def observe(
    store: Store, wanted: Iterable[ArtifactKey],
    signers: Mapping[ArtifactKey, WantedSigner] | None = None,
) -> Observation:
    """Wanted artifacts are fully verified (and, in ``signers``, held to their signer);
    the rest of the store is checked cheaply (a missing or malformed checksum file, an
    identity its driver version refuses: a few header reads), never re-hashed, so a plan
    stays fast on a large store."""
    present: set[ArtifactKey] = set()
    corrupt: set[ArtifactKey] = set()
    misfits: list[tuple[ArtifactKey, str]] = []
    unsigned: list[tuple[ArtifactKey, str]] = []
    signers = signers or {}
    unsafe: list[tuple[ArtifactKey, str]] = []
    wanted_set = set(wanted)
    root = os.fspath(store.root)
    # Most wanted artifacts of a large plan are missing: one listing per store folder
    # answers that for all of them, instead of one failed path walk each.
    listings: dict[tuple[str, str], frozenset[str] | str] = {}
    for key in wanted_set:
        store.check(key)
        folder = (key.driver_version, key.arch)
        names = listings.get(folder)
        if names is None:
            bad = store.unsafe_folder(key)
            if bad is not None:
                names = bad
            else:
                try:
                    # Plain names, no Path per entry: a plan lists thousands of them.
                    where = f"{root}/{folder[0]}/{folder[1]}"
                    names = frozenset(os.listdir(where))  # noqa: PTH208 - see above
                except (FileNotFoundError, NotADirectoryError):
                    names = frozenset()
            listings[folder] = names
        if isinstance(names, str):
            unsafe.append((key, names))
            continue
        if key.filename not in names:
            continue
        found = store.lookup(key)
        why = found.misfit if found is not None else None
        unsigned_why = found.signing_problem(signers.get(key)) if found is not None and (
            why is None) else None
        (present if found is not None and why is None and unsigned_why is None
         else corrupt).add(key)
        misfits.extend((key, w) for w in (why,) if w is not None)
        unsigned.extend((key, w) for w in (unsigned_why,) if w is not None)
    # By path, not by key: a file name does not always parse back into the key that named
    # it (a kernel version with "_", such as minikube's 1_1.26.0, splits differently).
    wanted_paths = {key.relpath for key in wanted_set}
    stored: set[ArtifactKey] = set()
    for key, path in store.artifact_paths():
        stored.add(key)
        if key.relpath not in wanted_paths and (
                not path.is_file() or _sidecar_digest(path) is None
                or store.misfit(key, path) is not None):
            corrupt.add(key)
    return Observation(frozenset(present), frozenset(corrupt), tuple(sorted(unsafe)),
                       tuple(sorted(misfits)), frozenset(stored), tuple(sorted(unsigned)))


def _sidecar_digest(path: Path) -> str | None:
    try:
        with path.with_name(path.name + SHA_SUFFIX).open("rb") as handle:
            return digest_in(handle.read(SIDECAR_MAX))
    except OSError:
        return None
