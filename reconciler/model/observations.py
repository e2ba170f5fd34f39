"""What the edges saw: a container, an image, the loaded kernel module, as plain values.

The Docker edge and the host edge fill these; ``observe.state`` gathers them into
the observed state the plan reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model import container


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
    restarting: bool = False
    health: str | None = None  # starting, healthy, unhealthy; None without a health check
    created: str = ""  # the engine's creation time (ISO 8601), for ordering
    addresses: tuple[tuple[str, str], ...] = ()  # (network, IP address) where it has one

    def address_on(self, network: str) -> str | None:
        """Its IP address on ``network``, None when it has none there."""
        return dict(self.addresses).get(network)

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

    @property
    def up(self) -> bool:
        """Running or in a restart loop: what must be stopped before it is set aside."""
        return self.status in ("running", "restarting")


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
class LoadedModule:
    name: str
    version: str | None  # None when the module declares none
