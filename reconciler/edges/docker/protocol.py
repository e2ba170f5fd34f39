"""What the reconciler asks of a container engine: the seam between apply logic and Docker.

``client.Docker`` is the real engine; ``fake.FakeEngine`` (beside it) is an in-memory one
for tests of the logic above (deploy order, rollback, recovery), as httpx ships a
``MockTransport`` beside its transports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.model.container import BindMount, ContainerSpec
from reconciler.model.observations import ObservedContainer


class EventSource(Protocol):
    def __iter__(self) -> Any: ...

    def close(self) -> None: ...


class EngineReader(Protocol):
    """The calls that only read: all a plan's observation asks (``observe.sources``)."""

    def container(self, ident: str) -> ObservedContainer | None: ...

    def containers(self, labels: Mapping[str, str]) -> tuple[ObservedContainer, ...]: ...

    def image_id(self, ref: str) -> str | None: ...

    def repo_digests(self, image_id: str) -> tuple[str, ...]: ...

    def registry_digest(self, ref: str) -> str | None: ...

    def network_gateway(self, name: str) -> str: ...


class ContainerEngine(EngineReader, Protocol):
    def close(self) -> None: ...

    def architecture(self) -> str: ...

    def pull(
        self, ref: str, progress: Callable[[Mapping[str, Any]], None] | None = None
    ) -> str: ...

    def create(
        self, *, image: str, name: str | None = None, command: Sequence[str] = (),
        env: Sequence[tuple[str, str]] = (), mounts: Sequence[BindMount] = (),
        network: str = "none", privileged: bool = False, restart_policy: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> str: ...

    def start(self, ident: str) -> None: ...

    def stop(self, ident: str, timeout: int) -> None: ...

    def kill(self, ident: str) -> None: ...

    def rename(self, ident: str, name: str) -> None: ...

    def remove(self, ident: str) -> None: ...

    def logs(self, ident: str, tail: int | None = None) -> str: ...

    def wait(self, ident: str, timeout: float | None) -> int | None: ...

    def commit(self, ident: str, reference: str, labels: Mapping[str, str],
               command: Sequence[str]) -> None: ...

    def events(self, filters: Mapping[str, Any]) -> EventSource: ...


def create_falco(engine: ContainerEngine, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
    """Create (not start) the Falco container ``spec`` describes; its id."""
    return engine.create(
        image=spec.image, name=spec.name, command=spec.command, env=spec.env,
        mounts=spec.mounts, network=spec.network, privileged=spec.privileged,
        restart_policy=spec.restart_policy, labels=labels,
    )
