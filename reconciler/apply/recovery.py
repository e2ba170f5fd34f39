"""Mend what a daemon killed in the middle of a container replacement left behind.

``deploy.FalcoDeployer`` stops the old container and renames it aside
(``model.container.aside_name``) before it creates the new one. Killed in between
(kill -9, power loss), it leaves the old Falco aside and maybe no ``<name>`` at all, or a
``<name>`` created but never started. Before each pass: a ``<name>`` of ours that was
created and never started is half made and removed (the engine cannot even rename such a
host-network container: "sandbox not found"); then if ``<name>`` exists, the set-aside
ones are removed (the replacement got that far); if not, the newest set-aside one is put
back under its name and started, so the plan sees the last Falco we ran and no second
container is ever created beside it.
"""

from __future__ import annotations

from reconciler import logs
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.errors import DockerError
from reconciler.model import container

log = logs.get(__name__)


def mend(engine: ContainerEngine, name: str) -> str | None:
    """What was done, or None if nothing was left behind."""
    try:
        found = engine.containers({container.LABEL_MANAGED: "true"})
        strays = sorted((c for c in found if container.is_aside_of(c.name, name)),
                        key=lambda c: c.created, reverse=True)
        current = next((c for c in found if c.name == name), None)
        done: list[str] = []
        if current is not None and current.status == "created":
            engine.remove(current.id)
            done.append(f"removed {name} {current.id[:12]}, created but never started")
            current = None
        if not strays:
            return _said(name, done)
        if current is None:
            current = engine.container(name)
        if current is None:
            keep, strays = strays[0], strays[1:]
            engine.rename(keep.id, name)
            if not keep.running:
                engine.start(keep.id)
            done.append(f"put {keep.id[:12]} back as {name}")
        for stray in strays:
            engine.remove(stray.id)
            done.append(f"removed {stray.name}")
    except DockerError as exc:
        raise DockerError(
            f"cannot mend the containers an interrupted replace left: {exc}") from exc
    return _said(name, done)


def _said(name: str, done: list[str]) -> str | None:
    if not done:
        return None
    text = "; ".join(done)
    log.warning("falco.recovered", container=name, done=text)
    return text
