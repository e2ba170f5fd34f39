"""Mend what a daemon killed in the middle of a container replacement left behind.

``FalcoDeployer`` renames the old container to ``<name>-previous-<id8>`` and stops it
before it creates the new one. Killed in between (kill -9, power loss), it leaves the old
Falco aside and maybe no ``<name>`` at all, or a ``<name>`` created but never started.
Before each pass: a ``<name>`` of ours that was created and never started is half made
and removed (the engine cannot even rename such a host-network container: "sandbox not
found"); then if ``<name>`` exists, the set-aside ones are removed (the replacement got
that far); if not, the newest set-aside one is put back under its name and started, so
the plan sees the last Falco we ran and no second container is ever created beside it.
"""

from __future__ import annotations

import re
from typing import Any

import docker.errors
import requests

from reconciler import logs
from reconciler.errors import DockerError
from reconciler.model import container

log = logs.get(__name__)
_SDK_ERRORS = (docker.errors.DockerException, requests.RequestException)


def mend(client: Any, name: str) -> str | None:
    """What was done, or None if nothing was left behind."""
    aside = re.compile(re.escape(name) + r"-previous-[0-9a-f]{8}")
    try:
        found = client.containers.list(
            all=True, filters={"label": f"{container.LABEL_MANAGED}=true"})
        strays = sorted((c for c in found if aside.fullmatch(c.name)),
                        key=lambda c: str(c.attrs.get("Created", "")), reverse=True)
        current = next((c for c in found if c.name == name), None)
        done: list[str] = []
        if current is not None and current.status == "created":
            current.remove(force=True)
            done.append(f"removed {name} {current.id[:12]}, created but never started")
            current = None
        if not strays:
            return _said(name, done)
        if current is None:
            try:
                current = client.containers.get(name)
            except docker.errors.NotFound:
                current = None
        if current is None:
            keep, strays = strays[0], strays[1:]
            keep.rename(name)
            if keep.status != "running":
                keep.start()
            done.append(f"put {keep.id[:12]} back as {name}")
        for stray in strays:
            stray.remove(force=True)
            done.append(f"removed {stray.name}")
    except _SDK_ERRORS as exc:
        raise DockerError(f"cannot mend the containers an interrupted replace left: {exc}") \
            from exc
    return _said(name, done)


def _said(name: str, done: list[str]) -> str | None:
    if not done:
        return None
    text = "; ".join(done)
    log.warning("falco.recovered", container=name, done=text)
    return text
