"""Insert the module a ``kmod-preloaded`` Falco uses; swap it when another version is in.

Swapping needs the module unused, so our Falco container is stopped for the swap and
started again afterwards (a following container change may then replace it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from reconciler.desired.state import DesiredState
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.host import kmod
from reconciler.edges.store.local import Store
from reconciler.errors import DockerError, ModuleError
from reconciler.plan.diff import Change, Op


@dataclass
class ModuleLoader:
    engine: ContainerEngine
    store: Store
    commands: kmod.ModuleCommands
    stop_timeout: int = 10

    def apply(self, change: Change, desired: DesiredState) -> str:
        key = change.artifact
        assert key is not None
        found = self.store.lookup(key)
        if found is None:
            raise ModuleError(f"{key.relpath} is not in the store (or does not verify)")
        if change.op is not Op.REPLACE:
            self.commands.insert(found.path)
            return f"inserted {found.path.name}"
        name = desired.container.spec.name if desired.container else ""
        running = self.engine.container(name) if name else None
        if running is not None and running.running:
            try:
                self.engine.stop(running.id, self.stop_timeout)
            except DockerError as exc:
                raise DockerError(
                    f"cannot stop {name} to swap the kernel module: {exc}") from exc
        else:
            running = None
        try:
            self.commands.remove(kmod.MODULE_NAME)
            self.commands.insert(found.path)
        finally:
            if running is not None:
                with contextlib.suppress(DockerError):
                    self.engine.start(running.id)
        return f"swapped the kernel module for {found.path.name}"
