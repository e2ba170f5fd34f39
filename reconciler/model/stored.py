"""What a read of the driver store found, as plain values (no decision in them).

The store's edge (``edges.store``) fills these; the observe stage (``observe.stored``)
decides what each means for a plan: present, corrupt, a misfit, unsigned, unsafe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.model import modsig
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.versions import DriverIdentity

# What a module's appended signature says; a str when it is there but cannot be read.
Signature = modsig.ModuleSignature | str | None
# The signer a module must carry; a str says why the wanted one cannot be known.
WantedSigner = modsig.Signer | str


@dataclass(frozen=True)
class StoredArtifact:
    """An artifact that verifies against its sidecar, and what the file carries."""

    key: ArtifactKey
    path: Path
    size: int
    sha256: str
    mtime: float
    identity: DriverIdentity | None = None  # None: the file carries none we can read
    signature: Signature = None  # a module's appended signature; None: unsigned


@dataclass(frozen=True)
class WantedFile:
    """A wanted artifact with something at its place: a file, or a folder on its path
    that is a symlink or not a folder (``unsafe_folder``, relative to the store)."""

    key: ArtifactKey
    found: StoredArtifact | None = None  # None: the file there does not verify
    unsafe_folder: str | None = None


@dataclass(frozen=True)
class OtherFile:
    """A file named like an artifact that nothing wanted, checked cheaply (never hashed)."""

    key: ArtifactKey
    checksummed: bool  # a regular file with a well-formed sidecar beside it
    # Read only when its driver version requires one (``versions.required_identity``).
    identity: DriverIdentity | None = None


@dataclass(frozen=True)
class StoreReading:
    """One read of the store for a plan. A wanted artifact with nothing at its place is
    in no list: it is simply missing."""

    wanted: tuple[WantedFile, ...] = ()
    others: tuple[OtherFile, ...] = ()
    stored: frozenset[ArtifactKey] = frozenset()  # every file named like an artifact
