"""The local driver store: artifacts laid out as Falco downloads them, each verified.

This module holds the one definition of a verified artifact, used by the plan, the
builder, the deployer and the server alike: the file at ``<driverVersion>/<arch>/<name>``,
reached from the store root without following a symlink (``opener``), is a regular file,
and its ``<file>.sha256`` sidecar names exactly the digest of its content (``verifier``,
which remembers each verdict by the files' identity). ``Store`` puts the two together;
the composition root builds it once and hands the same instance (and so the same
verdict cache) to every part.

An artifact's identity (its API and schema version, ``model.driverfile``) and a module's
appended signature (``model.modsig``) are read from the file itself. ``read`` gathers what
a plan needs to know of the store in one value (``model.stored.StoreReading``); whether
that makes an artifact present, corrupt, a misfit or unsigned is the observe stage's
decision (``observe.stored``), not the store's.

Publishing is atomic (``edges.atomic``): the sidecar goes in first, then the artifact, each
by rename, so a reader never sees an artifact without the checksum that proves it. Every
key's path is checked to lie strictly inside the store before anything is read or
written (``path_of``), whatever the caller: a key with a ``/``, a ``..`` or a NUL in a
part is a ``StoreError``, never a path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from reconciler.edges import atomic
from reconciler.edges.store import opener
from reconciler.edges.store.opener import LOAD_TEST_SUFFIX, SHA_SUFFIX, OpenFile
from reconciler.edges.store.verifier import Verifier, sha256_file, sha256sum_line
from reconciler.errors import InvalidDriver, StoreError
from reconciler.model import driverfile, versions
from reconciler.model.artifacts import ArtifactKey, DriverKind, parse_relpath
from reconciler.model.stored import (
    OtherFile,
    Signature,
    StoredArtifact,
    StoreReading,
    WantedFile,
)
from reconciler.model.versions import DriverIdentity

# What other modules import from here, as before the opener and verifier were split out.
__all__ = ["LOAD_TEST_SUFFIX", "SHA_SUFFIX", "OpenFile", "Store", "StoredArtifact"]


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
        if not (opener.safe_part(key.driver_version) and opener.safe_part(key.arch)
                and opener.safe_part(key.filename)):
            raise StoreError(f"refusing artifact {key.relpath!r}: a part of its name would "
                             "lead outside the store")

    def path_of(self, key: ArtifactKey) -> Path:
        """Where ``key`` lives; StoreError unless that is strictly inside the store."""
        self.check(key)
        return self.root / key.relpath

    def unsafe_folder(self, key: ArtifactKey) -> str | None:
        """The store folder on ``key``'s path that is a symlink or not a folder, if any:
        such an artifact can never be served, so it is reported rather than rebuilt."""
        self.check(key)
        return opener.unsafe_folder(self.root, key)

    # -- the verified artifact ----------------------------------------------------------

    def open_artifact(self, relpath: str) -> OpenFile | None:
        """The artifact at ``relpath`` opened, if it is a regular file that verifies."""
        return opener.open_artifact(self._root, relpath, self.verifier)

    def open_sidecar(self, relpath: str) -> OpenFile | None:
        """The ``.sha256`` file at ``relpath`` opened, if well-formed."""
        return opener.open_sidecar(self._root, relpath)

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

    def _identity_at(self, path: Path, kind: DriverKind) -> DriverIdentity | None:
        fd = opener.open_file(path)
        if fd is None:
            return None
        try:
            return self.verifier.driver_identity(fd, os.fstat(fd), kind)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _signature_at(self, path: Path, kind: DriverKind) -> Signature:
        fd = opener.open_file(path) if kind is DriverKind.KMOD else None
        if fd is None:
            return None
        try:
            return self.verifier.module_signature(fd, os.fstat(fd))
        except OSError:
            return None
        finally:
            os.close(fd)

    # -- what a plan reads -------------------------------------------------------------

    def read(self, wanted: Iterable[ArtifactKey]) -> StoreReading:
        """Wanted artifacts are fully verified and read; the rest of the store is looked
        at cheaply (a regular file with a well-formed checksum file, and the identity its
        driver version requires: a few header reads), never re-hashed, so a plan stays
        fast on a large store."""
        wanted_set = set(wanted)
        found: list[WantedFile] = []
        # Most wanted artifacts of a large plan are missing: one listing per store folder
        # answers that for all of them, instead of one failed path walk each.
        listings: dict[tuple[str, str], frozenset[str] | str] = {}
        for key in wanted_set:
            self.check(key)
            folder = (key.driver_version, key.arch)
            names = listings.get(folder)
            if names is None:
                names = opener.unsafe_folder(self.root, key) or self._names_in(*folder)
                listings[folder] = names
            if isinstance(names, str):
                found.append(WantedFile(key, unsafe_folder=names))
            elif key.filename in names:
                found.append(WantedFile(key, self.lookup(key)))
        # By path, not by key: a file name does not always parse back into the key that
        # named it (a kernel version with "_", such as minikube's 1_1.26.0, splits
        # differently).
        wanted_paths = {key.relpath for key in wanted_set}
        stored: set[ArtifactKey] = set()
        others: list[OtherFile] = []
        for key, path in self.artifact_paths():
            stored.add(key)
            if key.relpath in wanted_paths:
                continue
            summed = opener.checksummed(path)
            identity = self._identity_at(path, key.kind) if summed and (
                versions.required_identity(key.driver_version) is not None) else None
            others.append(OtherFile(key, summed, identity))
        return StoreReading(tuple(found), tuple(others), frozenset(stored))

    def _names_in(self, driver_version: str, arch: str) -> frozenset[str]:
        try:
            return frozenset(os.listdir(f"{self._root}/{driver_version}/{arch}"))  # noqa: PTH208 - a listing by path string is what a large plan can afford
        except (FileNotFoundError, NotADirectoryError):
            return frozenset()

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
        for dirpath, dirnames, filenames in os.walk(
                self.root, onerror=opener.absent_unless_exhausted):
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
