"""Where a pass's observation comes from: small Protocols, gathered in one ``Sources``.

The composition root (``runtime``) builds a ``Sources`` from the settings, with one
adapter per Protocol (git, the host's files, the store, the engine, the upstreams, the
apt lists, the build queue, the retention ledger); the planner gets it whole and calls
nothing else that reads the world. ``observe.fakes`` has a fake of each, for tests of
pure logic; each adapter is tested against the real thing beside it.

    ManifestSource  git at a revision          edges.git.source.GitManifests
    HostReader      facts, the loaded module,  edges.host.reader.HostFiles
                    a signing certificate
    StoreReader     the store, read for a plan edges.store.local.Store
    EngineReader    containers and images      edges.docker.client.Docker (its
                                               Protocol is edges.docker.protocol's)
    UpstreamIndex   what the upstreams offer   observe.survey.SurveyIndex
    AptLists        newest kernel headers      edges.host.reader.AptCache
    QueueReader     builds others asked for    edges.state.files.QueueFile
    LedgerBook      what retention saw before  edges.state.files.LedgerFile
    LoadTestReader  drivers the load test held loadtest.quarantine.LoadTestFiles
                    back, results of stored ones
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.edges.docker.protocol import EngineReader
from reconciler.edges.git.repo import Snapshot
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import Requested
from reconciler.model.host import HostFacts, Newest
from reconciler.model.ledger import Ledger
from reconciler.model.observations import LoadedModule
from reconciler.model.stored import StoreReading, WantedSigner
from reconciler.observe.survey import Survey

Requests = tuple[tuple[Requested, tuple[str, ...]], ...]


class ManifestSource(Protocol):
    def snapshot(self, known_trees: Container[str]) -> Snapshot:
        """The manifest files at the revision (none read for a tree in ``known_trees``)."""
        ...


class HostReader(Protocol):
    def facts(self) -> HostFacts: ...

    def loaded_module(self) -> LoadedModule | None: ...

    def signer(self, certificate: str) -> WantedSigner:
        """Who the certificate at ``certificate`` names, or why it cannot be read."""
        ...


class StoreReader(Protocol):
    def read(self, wanted: Iterable[ArtifactKey]) -> StoreReading: ...

    def module_version(self, key: ArtifactKey) -> str | None: ...


class UpstreamIndex(Protocol):
    def offers(self, missing: Sequence[ArtifactKey]) -> Survey:
        """Which upstream has each of ``missing``, and what the asking noted."""
        ...


class AptLists(Protocol):
    def newest_release(self, pattern: str) -> Newest: ...


class QueueReader(Protocol):
    def requested(self) -> Requests: ...


class LedgerBook(Protocol):
    def read(self) -> Ledger: ...

    def write(self, ledger: Ledger) -> None: ...


class LoadTestReader(Protocol):
    def held_back(self, keys: Iterable[ArtifactKey]) -> Sequence[tuple[ArtifactKey, str]]:
        """Each of ``keys`` the load test kept out of the store, with why."""
        ...

    def unreadable(self, key: ArtifactKey | None) -> Sequence[
            tuple[ArtifactKey, str, tuple[str, ...]]]:
        """``key`` if its stored result says it loads but its userspace cannot read it:
        the libs version tested and the reasons."""
        ...


class NoLoadTests:
    """No load tests anywhere (fakes, and sources built without a state dir)."""

    def held_back(self, keys: Iterable[ArtifactKey]) -> Sequence[tuple[ArtifactKey, str]]:
        return ()

    def unreadable(self, key: ArtifactKey | None) -> Sequence[
            tuple[ArtifactKey, str, tuple[str, ...]]]:
        return ()


@dataclass(frozen=True)
class Sources:
    """Everything a pass reads, one adapter each; built once by the composition root."""

    manifests: ManifestSource
    host: HostReader
    store: StoreReader
    engine: EngineReader
    upstreams: UpstreamIndex
    apt: AptLists
    queue: QueueReader
    ledger: LedgerBook
    loadtests: LoadTestReader = field(default_factory=NoLoadTests)
