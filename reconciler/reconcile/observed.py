"""Observed state: what the store and the Docker engine hold now, as plain values.

The adapters (``store``, ``dockerapi``) fill it; the plan only reads it. An artifact is
present only if it verifies against its ``.sha256``; a file that does not is recorded as
corrupt, so the plan rebuilds it (when wanted) or deletes it (when not).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.edges.kmod import LoadedModule
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    image: str  # the reference it was created from
    status: str  # docker's: created, running, paused, restarting, removing, exited, dead
    labels: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    exit_code: int | None = None
    privileged: bool = True
    image_id: str = ""  # what it really runs
    restart_policy: str = ""  # "" when unknown (then not compared)

    @property
    def label_map(self) -> Mapping[str, str]:
        return dict(self.labels)

    @property
    def managed(self) -> bool:
        return self.label_map.get(container.LABEL_MANAGED) == "true"

    @property
    def spec_hash(self) -> str | None:
        return self.label_map.get(container.LABEL_SPEC_HASH)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class ObservedImage:
    """The image a Falco container should run: here, and (with ``pull: always``) upstream."""

    ref: str
    local_id: str | None = None
    remote_digest: str | None = None  # sha256:... the registry serves for the tag now
    running_digests: tuple[str, ...] = ()  # repo@sha256:... of the image Falco runs now

    @property
    def tag_moved(self) -> bool:
        """The registry serves another image than the one running (when both are known)."""
        if self.remote_digest is None or not self.running_digests:
            return False
        return not any(d.endswith("@" + self.remote_digest) for d in self.running_digests)


@dataclass(frozen=True)
class ObservedState:
    present: frozenset[ArtifactKey] = frozenset()
    corrupt: frozenset[ArtifactKey] = frozenset()
    containers: tuple[ObservedContainer, ...] = field(default=())
    image: ObservedImage | None = None
    module: LoadedModule | None = None  # the loaded Falco kernel module, if any

    def named(self, name: str) -> ObservedContainer | None:
        return next((c for c in self.containers if c.name == name), None)

    def digest(self) -> str:
        """A fingerprint of everything a plan was computed from (saved plans compare it)."""
        canonical = json.dumps({
            "present": sorted(k.relpath for k in self.present),
            "corrupt": sorted(k.relpath for k in self.corrupt),
            "containers": sorted(
                [c.id, c.name, c.image, c.status, c.spec_hash or "", c.managed, sorted(c.env)]
                for c in self.containers
            ),
            "image": [self.image.local_id, self.image.remote_digest] if self.image else None,
            "module": [self.module.name, self.module.version] if self.module else None,
        }, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def from_parts(
    present: Iterable[ArtifactKey],
    corrupt: Iterable[ArtifactKey],
    containers: Iterable[ObservedContainer],
    image: ObservedImage | None = None,
    module: LoadedModule | None = None,
) -> ObservedState:
    return ObservedState(
        present=frozenset(present),
        corrupt=frozenset(corrupt),
        containers=tuple(sorted(containers, key=lambda c: (c.name, c.id))),
        image=image,
        module=module,
    )
