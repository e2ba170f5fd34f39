"""The local driver store: artifacts laid out as Falco downloads them, each verified.

An artifact counts as present only when its file and its ``<file>.sha256`` (in
``sha256sum`` format) both exist and agree; anything corrupt, half-written or lacking its
checksum is absent, so the plan rebuilds it. Publishing is atomic (``atomic``): the
checksum goes in first, then the artifact, each by rename, so a reader never sees an
artifact without the checksum that proves it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges import atomic
from reconciler.errors import StoreError
from reconciler.model.artifacts import ArtifactKey, parse_relpath

SHA_SUFFIX = ".sha256"


@dataclass(frozen=True)
class StoredArtifact:
    key: ArtifactKey
    path: Path
    size: int
    sha256: str
    mtime: float


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sum_line(digest: str, filename: str) -> str:
    """One line as ``sha256sum`` writes it (two spaces: text mode)."""
    return f"{digest}  {filename}\n"


def read_sha256_sidecar(path: Path) -> str | None:
    """The digest in ``<path>.sha256``, or None if missing or malformed."""
    try:
        text = path.with_name(path.name + SHA_SUFFIX).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    fields = text.split()
    if len(fields) < 1 or len(fields[0]) != 64:
        return None
    digest = fields[0].lower()
    if any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest


class Store:
    """The driver store rooted at ``root`` (created on first publish)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: ArtifactKey) -> Path:
        return self.root / key.relpath

    def lookup(self, key: ArtifactKey) -> StoredArtifact | None:
        """The artifact if it is present and its checksum verifies, else None."""
        path = self.path_of(key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
        if not path.is_file() or path.is_symlink():
            return None
        expected = read_sha256_sidecar(path)
        if expected is None:
            return None
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
        if actual != expected:
            return None
        return StoredArtifact(key, path, stat.st_size, actual, stat.st_mtime)

    def artifact_paths(self) -> Iterator[tuple[ArtifactKey, Path]]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath) / name
                key = parse_relpath(path.relative_to(self.root).as_posix())
                if key is not None:
                    yield key, path

    def scan(self) -> tuple[StoredArtifact, ...]:
        """Every artifact in the store that verifies, sorted by key."""
        found = (self.lookup(key) for key, _ in self.artifact_paths())
        return tuple(sorted((a for a in found if a is not None), key=lambda a: a.key))

    def publish(self, key: ArtifactKey, source: Path) -> StoredArtifact:
        """Copy ``source`` into the store as ``key``, atomically, with its checksum."""
        target = self.path_of(key)
        try:
            digest = sha256_file(source)
            atomic.write_bytes(
                target.with_name(target.name + SHA_SUFFIX),
                sha256sum_line(digest, target.name).encode("ascii"),
            )
            atomic.copy_file(source, target)
            stat = target.stat()
        except OSError as exc:
            raise StoreError(f"cannot publish {key.relpath}: {exc}") from exc
        return StoredArtifact(key, target, stat.st_size, digest, stat.st_mtime)

    def remove(self, key: ArtifactKey) -> None:
        target = self.path_of(key)
        try:
            for path in (target, target.with_name(target.name + SHA_SUFFIX)):
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


def observe(
    store: Store, wanted: Iterable[ArtifactKey]
) -> tuple[set[ArtifactKey], set[ArtifactKey]]:
    """(present, corrupt): wanted artifacts are fully verified; the rest of the store is
    checked cheaply (a missing or malformed checksum file), never re-hashed, so a plan
    stays fast on a large store."""
    present: set[ArtifactKey] = set()
    corrupt: set[ArtifactKey] = set()
    wanted_set = set(wanted)
    root = os.fspath(store.root)
    # Most wanted artifacts of a large plan are missing: one listing per store folder
    # answers that for all of them, instead of one failed path walk each.
    listings: dict[tuple[str, str], frozenset[str]] = {}
    for key in wanted_set:
        folder = (key.driver_version, key.arch)
        names = listings.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(f"{root}/{folder[0]}/{folder[1]}"))  # noqa: PTH208
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            listings[folder] = names
        if key.filename not in names:
            continue
        if store.lookup(key) is not None:
            present.add(key)
        elif store.path_of(key).exists():
            corrupt.add(key)
    for key, path in store.artifact_paths():
        if key not in wanted_set and (not path.is_file() or read_sha256_sidecar(path) is None):
            corrupt.add(key)
    return present, corrupt
