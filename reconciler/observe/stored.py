"""What the store's files mean to a plan: present, corrupt, a misfit, unsigned, unsafe.

Pure, over what the store's edge read (``model.stored.StoreReading``). A wanted artifact
is present only if it verifies against its ``.sha256``, its identity (when it carries
one) fits its driver version and, for a module wanted signed by a certificate, its
signature names that certificate's issuer and serial; any module is usable where no
signature is wanted (a signed module loads on every kernel). A wanted file that fails
any of these is corrupt, the last two with their reason (``misfits``, ``unsigned``), so
the plan rebuilds it. An unwanted file is corrupt when it lacks a regular file or a
well-formed checksum, or carries an identity its driver version refuses. A wanted
artifact behind a folder that is a symlink is ``unsafe``: the store never follows one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model import versions
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.stored import Signature, StoredArtifact, StoreReading, WantedSigner


@dataclass(frozen=True)
class Holdings:
    """What the store holds of interest to a plan."""

    present: frozenset[ArtifactKey] = frozenset()
    corrupt: frozenset[ArtifactKey] = frozenset()  # a file is there, but it does not do
    unsafe: tuple[tuple[ArtifactKey, str], ...] = ()  # wanted, behind a symlinked folder
    # Wanted, verifying, but carrying an identity its driver version refuses (why).
    misfits: tuple[tuple[ArtifactKey, str], ...] = ()
    # Every file named like an artifact, verified or not (what retention looks at).
    stored: frozenset[ArtifactKey] = frozenset()
    # Wanted signed by a certificate, verifying, but unsigned or signed by another (why).
    unsigned: tuple[tuple[ArtifactKey, str], ...] = ()


def _signature_problem(found: Signature, wanted: WantedSigner | None) -> str | None:
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


def signing_problem(found: StoredArtifact, wanted: WantedSigner | None) -> str | None:
    """Why this artifact is not signed as ``wanted`` (only modules are signed), or None."""
    return _signature_problem(found.signature, wanted) if found.key.kind is DriverKind.KMOD \
        else None


def misfit(found: StoredArtifact) -> str | None:
    """Why its identity cannot be its driver version, or None (it fits or carries none)."""
    if found.identity is None:
        return None
    return versions.identity_problem(found.key.driver_version, found.identity)


def usable(found: StoredArtifact | None, signer: WantedSigner | None = None) -> (
        StoredArtifact | None):
    """``found`` if it counts as present (see above): what a build need not redo."""
    if found is None or misfit(found) is not None or signing_problem(found, signer):
        return None
    return found


def classify(reading: StoreReading,
             signers: Mapping[ArtifactKey, WantedSigner] | None = None) -> Holdings:
    """What ``reading`` means, with ``signers`` the signer each module wanted signed must
    carry."""
    signers = signers or {}
    present: set[ArtifactKey] = set()
    corrupt: set[ArtifactKey] = set()
    unsafe: list[tuple[ArtifactKey, str]] = []
    misfits: list[tuple[ArtifactKey, str]] = []
    unsigned_: list[tuple[ArtifactKey, str]] = []
    for wanted in reading.wanted:
        key, found = wanted.key, wanted.found
        if wanted.unsafe_folder is not None:
            unsafe.append((key, wanted.unsafe_folder))
            continue
        why = misfit(found) if found is not None else None
        unsigned_why = signing_problem(found, signers.get(key)) if found is not None and (
            why is None) else None
        (present if found is not None and why is None and unsigned_why is None
         else corrupt).add(key)
        misfits.extend((key, w) for w in (why,) if w is not None)
        unsigned_.extend((key, w) for w in (unsigned_why,) if w is not None)
    for other in reading.others:
        if not other.checksummed or (other.identity is not None and versions.identity_problem(
                other.key.driver_version, other.identity) is not None):
            corrupt.add(other.key)
    return Holdings(frozenset(present), frozenset(corrupt), tuple(sorted(unsafe)),
                    tuple(sorted(misfits)), reading.stored, tuple(sorted(unsigned_)))
