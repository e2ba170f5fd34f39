"""The host as a plan reads it, under a host root: its facts, the Falco module loaded in
its kernel, the signing certificates it names, and its apt package lists.

Thin adapters over ``facts``, ``kmod``, ``openssl`` and ``apt`` for the observe stage's
Protocols (``observe.sources.HostReader``, ``AptLists``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.edges.host import apt, factsfile, kmod, openssl
from reconciler.edges.host import facts as hostfacts
from reconciler.errors import CertificateUnreadable
from reconciler.model.host import HostFacts, Newest
from reconciler.model.observations import LoadedModule
from reconciler.model.stored import WantedSigner


@dataclass(frozen=True)
class HostFiles:
    host_root: Path
    hostname: str | None = None  # overrides the host's own name (build hosts, tests)

    def facts(self) -> HostFacts:
        return hostfacts.read(self.host_root, hostname=self.hostname)

    def loaded_module(self) -> LoadedModule | None:
        return kmod.observe(self.host_root)

    def signer(self, certificate: str) -> WantedSigner:
        """The issuer and serial a module signed with ``certificate`` names; an unreadable
        certificate gives why instead, and then no module passes it."""
        try:
            return openssl.read_certificate(Path(certificate)).signer
        except CertificateUnreadable as exc:
            return str(exc)


@dataclass(frozen=True)
class ReportedHost(HostFiles):
    """Another host, as its ``facts --json`` reported it (``plan --facts FILE``): its
    facts come from the file; what is loaded in its kernel cannot be seen from here."""

    facts_file: Path = Path()

    def facts(self) -> HostFacts:
        found = factsfile.read(self.facts_file)
        return replace(found, hostname=self.hostname) if self.hostname else found

    def loaded_module(self) -> LoadedModule | None:
        return None


@dataclass(frozen=True)
class AptCache:
    host_root: Path

    def newest_release(self, pattern: str) -> Newest:
        return apt.newest_release(self.host_root, pattern)
