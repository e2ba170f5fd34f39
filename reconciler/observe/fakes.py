"""In-memory fakes of the observe stage's Protocols (``observe.sources``), for tests of
the logic above them (the observe stage, the planner) without git, files or sockets.

Each keeps what the real adapter promises: a manifest source reads nothing for a tree
the caller already knows, and the same files make the same tree; a store reading lists
only the wanted artifacts that have something at their place, and every file in
``stored``; a certificate nobody has is a reason, not a signer; the ledger keeps what
was written. ``sources`` gathers them, with ``edges.docker.fake.FakeEngine`` as the engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.edges.docker.fake import FakeEngine
from reconciler.edges.docker.protocol import EngineReader
from reconciler.edges.git.repo import Snapshot
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.host import HostFacts, Newest
from reconciler.model.ledger import Ledger
from reconciler.model.observations import LoadedModule
from reconciler.model.offers import Offer
from reconciler.model.stored import (
    OtherFile,
    Signature,
    StoredArtifact,
    StoreReading,
    WantedFile,
    WantedSigner,
)
from reconciler.model.versions import DriverIdentity
from reconciler.observe.sources import Requests, Sources
from reconciler.observe.survey import Survey


@dataclass
class FakeManifests:
    """A repository at one revision: ``files`` by path relative to the manifest root."""

    files: Mapping[str, bytes]
    revision: str = "f" * 40
    reads: int = 0  # how many snapshots read the files
    snapshots: int = 0  # how many times git was asked at all

    @property
    def tree(self) -> str:
        digest = hashlib.sha1(usedforsecurity=False)
        for name, data in sorted(self.files.items()):
            digest.update(f"{name}\0{len(data)}\0".encode() + data)
        return digest.hexdigest()

    def snapshot(self, known_trees: Container[str]) -> Snapshot:
        self.snapshots += 1
        tree = self.tree
        if tree in known_trees:
            return Snapshot(self.revision, tree, None)
        self.reads += 1
        return Snapshot(self.revision, tree, tuple(sorted(self.files.items())))


def facts(hostname: str = "web-1", release: str = "6.1.0-18-amd64",
          version: str = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)") -> HostFacts:
    """A Debian 12 host's facts."""
    return HostFacts(hostname=hostname, kernel_release=release, kernel_version=version,
                     machine="x86_64", os_id="debian", os_version_id="12",
                     os_release=(("ID", "debian"), ("VERSION_ID", "12")),
                     os_release_file="etc/os-release")


@dataclass
class FakeHost:
    host_facts: HostFacts = field(default_factory=facts)
    module: LoadedModule | None = None
    signers: Mapping[str, WantedSigner] = field(default_factory=dict)  # certificate -> who
    certificates_read: list[str] = field(default_factory=list)

    def facts(self) -> HostFacts:
        return self.host_facts

    def loaded_module(self) -> LoadedModule | None:
        return self.module

    def signer(self, certificate: str) -> WantedSigner:
        self.certificates_read.append(certificate)
        return self.signers.get(certificate,
                                f"cannot read the signing certificate {certificate}")


def stored_artifact(key: ArtifactKey, data: bytes = b"\x7fELF", *,
                    identity: DriverIdentity | None = None,
                    signature: Signature = None) -> StoredArtifact:
    """A verifying artifact of content ``data``, carrying ``identity`` and ``signature``."""
    return StoredArtifact(key, Path("/store") / key.relpath, len(data),
                          hashlib.sha256(data).hexdigest(), 0.0, identity, signature)


@dataclass
class FakeStore:
    """``files``: each artifact in the store, with what a verifying read found (None: the
    file is there but does not verify); ``unsafe``: folders (relative to the store) that
    are symlinks; ``unchecksummed``: files without a well-formed sidecar."""

    files: Mapping[ArtifactKey, StoredArtifact | None] = field(default_factory=dict)
    unsafe: frozenset[str] = frozenset()
    unchecksummed: frozenset[ArtifactKey] = frozenset()
    module_versions: Mapping[ArtifactKey, str] = field(default_factory=dict)
    reads: list[frozenset[ArtifactKey]] = field(default_factory=list)

    def _unsafe_folder(self, key: ArtifactKey) -> str | None:
        for folder in (key.driver_version, f"{key.driver_version}/{key.arch}"):
            if folder in self.unsafe:
                return folder
        return None

    def read(self, wanted: Iterable[ArtifactKey]) -> StoreReading:
        keys = frozenset(wanted)
        self.reads.append(keys)
        found: list[WantedFile] = []
        for key in sorted(keys):
            folder = self._unsafe_folder(key)
            if folder is not None:
                found.append(WantedFile(key, unsafe_folder=folder))
            elif key in self.files:
                found.append(WantedFile(key, self.files[key]))
        others = tuple(
            OtherFile(key, key not in self.unchecksummed,
                      artifact.identity if artifact is not None else None)
            for key, artifact in sorted(self.files.items()) if key not in keys)
        return StoreReading(tuple(found), others, frozenset(self.files))

    def module_version(self, key: ArtifactKey) -> str | None:
        return self.module_versions.get(key)


@dataclass
class FakeUpstreams:
    """Upstreams that have ``has`` (in their order); ``down`` could not be asked."""

    has: Mapping[ArtifactKey, tuple[Offer, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    down: tuple[str, ...] = ()
    asked: list[tuple[ArtifactKey, ...]] = field(default_factory=list)

    def offers(self, missing: Sequence[ArtifactKey]) -> Survey:
        wanted = tuple(sorted(set(missing)))
        self.asked.append(wanted)
        return Survey(tuple((k, self.has[k]) for k in wanted if k in self.has),
                      self.notes, self.down)


@dataclass
class FakeApt:
    """Package lists offering the newest release ``newest[pattern]`` of each pattern."""

    newest: Mapping[str, str] = field(default_factory=dict)

    def newest_release(self, pattern: str) -> Newest:
        release = self.newest.get(pattern)
        return Newest(pattern, release, "" if release else "no such headers in the lists")


@dataclass
class FakeQueue:
    pending: Requests = ()

    def requested(self) -> Requests:
        return self.pending


@dataclass
class FakeLedger:
    book: Ledger = field(default_factory=Ledger)
    writes: int = 0

    def read(self) -> Ledger:
        return self.book

    def write(self, ledger: Ledger) -> None:
        self.book = ledger
        self.writes += 1


def sources(manifests: FakeManifests | None = None, *, host: FakeHost | None = None,
            store: FakeStore | None = None, engine: EngineReader | None = None,
            upstreams: FakeUpstreams | None = None, apt: FakeApt | None = None,
            queue: FakeQueue | None = None, ledger: FakeLedger | None = None) -> Sources:
    """Fakes for every source; each one not given is empty."""
    return Sources(manifests or FakeManifests({}), host or FakeHost(), store or FakeStore(),
                   engine or FakeEngine(), upstreams or FakeUpstreams(), apt or FakeApt(),
                   queue or FakeQueue(), ledger or FakeLedger())


def now() -> dt.datetime:
    """A fixed clock for planners over fakes."""
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
