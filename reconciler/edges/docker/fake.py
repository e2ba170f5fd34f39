"""An in-memory container engine for tests of the logic above the Docker edge.

It keeps the rules of the real engine that the apply logic relies on: names are unique,
a running container cannot be renamed onto a taken name, a stopped container keeps its
exit code, ``start`` runs the container's ``behaviour`` (by image: stays up, or exits
with a code and log lines), images must exist (or be pulled) before a create.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.errors import DockerError
from reconciler.model.container import BindMount
from reconciler.model.observations import ObservedContainer


@dataclass(frozen=True)
class Behaviour:
    """What a container of an image does when started."""

    exit_code: int | None = None  # None: stays up
    log: str = ""
    address: str = ""  # its IP address on its network once started ("" on none or host)


@dataclass
class _Box:
    observed: ObservedContainer
    mounts: tuple[BindMount, ...] = ()
    command: tuple[str, ...] = ()
    log: str = ""


class _NoEvents:
    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(())

    def close(self) -> None:
        return None


@dataclass
class FakeEngine:
    images: dict[str, str] = field(default_factory=dict)  # ref -> id
    behaviours: dict[str, Behaviour] = field(default_factory=dict)  # image ref -> behaviour
    pullable: dict[str, str] = field(default_factory=dict)  # ref -> id a pull would give
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, target)
    fail: Callable[[str, str], DockerError | None] = lambda _op, _target: None
    _boxes: dict[str, _Box] = field(default_factory=dict)
    _networks: dict[str, str] = field(default_factory=dict)  # id -> the network it is on
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # -- helpers ----------------------------------------------------------------------

    def _find(self, ident: str) -> _Box | None:
        if ident in self._boxes:
            return self._boxes[ident]
        return next((b for b in self._boxes.values() if b.observed.name == ident), None)

    def _must(self, ident: str) -> _Box:
        box = self._find(ident)
        if box is None:
            raise DockerError(f"no such container: {ident}")
        return box

    def _record(self, operation: str, target: str) -> None:
        self.calls.append((operation, target))
        failure = self.fail(operation, target)
        if failure is not None:
            raise failure

    def _set(self, box: _Box, **changes: Any) -> None:
        box.observed = replace(box.observed, **changes)

    # -- the protocol -----------------------------------------------------------------

    def close(self) -> None:
        return None

    def container(self, ident: str) -> ObservedContainer | None:
        box = self._find(ident)
        return box.observed if box else None

    def containers(self, labels: Mapping[str, str]) -> tuple[ObservedContainer, ...]:
        found = [b.observed for b in self._boxes.values()
                 if all(b.observed.label_map.get(k) == v for k, v in labels.items())]
        return tuple(sorted(found, key=lambda c: (c.name, c.id)))

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def repo_digests(self, image_id: str) -> tuple[str, ...]:
        return ()

    def registry_digest(self, ref: str) -> str | None:
        return None

    def network_gateway(self, name: str) -> str:
        raise DockerError(f"Docker network {name!r} (falco.network) does not exist")

    def architecture(self) -> str:
        return "x86_64"

    def pull(self, ref: str, progress: Callable[[Mapping[str, Any]], None] | None = None) -> str:
        self._record("pull", ref)
        if ref not in self.pullable:
            raise DockerError(f"cannot pull {ref}: not found in the registry")
        self.images[ref] = self.pullable[ref]
        return self.images[ref]

    def create(
        self, *, image: str, name: str | None = None, command: Sequence[str] = (),
        env: Sequence[tuple[str, str]] = (), mounts: Sequence[BindMount] = (),
        network: str = "none", privileged: bool = False, restart_policy: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> str:
        self._record("create", name or image)
        if image not in self.images:
            raise DockerError(f"cannot create a container from {image}: no such image")
        ident = f"{next(self._ids):064x}"
        name = name or f"box-{ident[-6:]}"
        if self._find(name) is not None:
            raise DockerError(f"cannot create {name}: the name is already in use")
        self._boxes[ident] = _Box(ObservedContainer(
            id=ident, name=name, image=image, status="created",
            labels=tuple(sorted((labels or {}).items())), env=tuple(env),
            privileged=privileged, image_id=self.images[image], restart_policy=restart_policy,
            created=f"{ident}",
        ), tuple(mounts), tuple(command))
        self._networks[ident] = network
        return ident


    def start(self, ident: str) -> None:
        box = self._must(ident)
        self._record("start", box.observed.name)
        behaviour = self.behaviours.get(box.observed.image, Behaviour())
        box.log += behaviour.log
        if behaviour.address:
            self._set(box, addresses=((self._networks[ident], behaviour.address),))
        if behaviour.exit_code is None:
            self._set(box, status="running", exit_code=0)
        else:
            self._set(box, status="exited", exit_code=behaviour.exit_code)

    def stop(self, ident: str, timeout: int) -> None:
        box = self._must(ident)
        self._record("stop", box.observed.name)
        if box.observed.up:
            self._set(box, status="exited", exit_code=0, restarting=False)

    def kill(self, ident: str) -> None:
        box = self._find(ident)
        if box is not None and box.observed.up:
            self._set(box, status="exited", exit_code=137)

    def rename(self, ident: str, name: str) -> None:
        box = self._must(ident)
        self._record("rename", f"{box.observed.name}->{name}")
        other = self._find(name)
        if other is not None and other is not box:
            raise DockerError(f"cannot rename to {name}: the name is already in use")
        self._set(box, name=name)

    def remove(self, ident: str) -> None:
        box = self._find(ident)
        if box is None:
            return
        self._record("remove", box.observed.name)
        del self._boxes[box.observed.id]

    def logs(self, ident: str, tail: int | None = None) -> str:
        box = self._find(ident)
        if box is None:
            return ""
        lines = box.log.splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def wait(self, ident: str, timeout: float | None) -> int | None:
        box = self._must(ident)
        return box.observed.exit_code if box.observed.status == "exited" else None

    def commit(self, ident: str, reference: str, labels: Mapping[str, str],
               command: Sequence[str]) -> None:
        self._must(ident)
        self.images[reference] = f"sha256:{len(self.images):064x}"

    def events(self, filters: Mapping[str, Any]) -> _NoEvents:
        return _NoEvents()
