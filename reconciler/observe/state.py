"""Observed state: what the store and the Docker engine hold now, as plain values.

The edges (the store, Docker, the host) fill it; the plan only reads it. An artifact is
present only if it verifies against its ``.sha256``; a file that does not is recorded as
corrupt, so the plan rebuilds it (when wanted) or deletes it (when not). A wanted
artifact behind a store folder that is a symlink is ``unsafe``: neither the store nor the
server ever follows one, so rebuilding it would change nothing, and the plan says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.model.artifacts import ArtifactKey
from reconciler.model.observations import LoadedModule, ObservedContainer, ObservedImage
from reconciler.model.offers import Offer


@dataclass(frozen=True)
class ObservedState:
    present: frozenset[ArtifactKey] = frozenset()
    corrupt: frozenset[ArtifactKey] = frozenset()
    unsafe: tuple[tuple[ArtifactKey, str], ...] = ()  # (wanted key, the offending folder)
    misfits: tuple[tuple[ArtifactKey, str], ...] = ()  # (corrupt key, why its identity fails)
    unsigned: tuple[tuple[ArtifactKey, str], ...] = ()  # (corrupt key, why not signed as wanted)
    containers: tuple[ObservedContainer, ...] = field(default=())
    image: ObservedImage | None = None
    module: LoadedModule | None = None  # the loaded Falco kernel module, if any
    # The version the stored module to insert declares (kmod-preloaded), when known.
    module_file_version: str | None = None
    # Every file in the store named like an artifact, wanted or not (retention's input).
    stored: frozenset[ArtifactKey] = frozenset()
    # Missing artifacts an upstream has (``observe.survey``), and what the survey noted.
    offers: tuple[tuple[ArtifactKey, tuple[Offer, ...]], ...] = ()
    upstream_notes: tuple[str, ...] = ()
    upstreams_down: tuple[str, ...] = ()  # asked, but not to the end (``Survey.down``)
    # Missing artifacts the load test kept out of the store (quarantined), and why.
    held_back: tuple[tuple[ArtifactKey, str], ...] = ()
    # Stored drivers that load but whose tested userspace could not read them: the libs
    # version of that userspace and the test's reasons (``loadtest.compat``).
    unreadable: tuple[tuple[ArtifactKey, str, tuple[str, ...]], ...] = ()

    def named(self, name: str) -> ObservedContainer | None:
        return next((c for c in self.containers if c.name == name), None)

    def digest(self) -> str:
        """A fingerprint of everything a plan was computed from (saved plans compare it)."""
        canonical = json.dumps({
            "present": sorted(k.relpath for k in self.present),
            "corrupt": sorted(k.relpath for k in self.corrupt),
            "unsafe": sorted(k.relpath for k, _folder in self.unsafe),
            "stored": sorted(k.relpath for k in self.stored),
            "containers": sorted(
                [c.id, c.name, c.image, c.status, c.spec_hash or "", c.managed, sorted(c.env)]
                for c in self.containers
            ),
            "image": [self.image.local_id, self.image.remote_digest] if self.image else None,
            "module": [self.module.name, self.module.version] if self.module else None,
            "offers": [[k.relpath, [[o.upstream, o.url, o.sha256] for o in found]]
                       for k, found in self.offers],
        }, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def from_parts(
    present: Iterable[ArtifactKey],
    corrupt: Iterable[ArtifactKey],
    containers: Iterable[ObservedContainer],
    image: ObservedImage | None = None,
    *,
    module: LoadedModule | None = None,
    unsafe: Iterable[tuple[ArtifactKey, str]] = (),
    misfits: Iterable[tuple[ArtifactKey, str]] = (),
    stored: Iterable[ArtifactKey] = (),
    unsigned: Iterable[tuple[ArtifactKey, str]] = (),
    offers: Iterable[tuple[ArtifactKey, tuple[Offer, ...]]] = (),
    upstream_notes: Iterable[str] = (),
    upstreams_down: Iterable[str] = (),
    module_file_version: str | None = None,
    held_back: Iterable[tuple[ArtifactKey, str]] = (),
    unreadable: Iterable[tuple[ArtifactKey, str, tuple[str, ...]]] = (),
) -> ObservedState:
    return ObservedState(
        present=frozenset(present),
        corrupt=frozenset(corrupt),
        unsafe=tuple(sorted(unsafe)),
        misfits=tuple(sorted(misfits)),
        unsigned=tuple(sorted(unsigned)),
        containers=tuple(sorted(containers, key=lambda c: (c.name, c.id))),
        image=image,
        module=module,
        module_file_version=module_file_version,
        stored=frozenset(stored),
        offers=tuple(sorted(offers)),
        upstream_notes=tuple(upstream_notes),
        upstreams_down=tuple(upstreams_down),
        held_back=tuple(sorted(held_back)),
        unreadable=tuple(sorted(unreadable)),
    )
