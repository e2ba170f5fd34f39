"""The Docker engine adapter: the few SDK calls we make, with errors translated.

Found through the usual ``DOCKER_HOST`` (``docker.from_env``). Everything the SDK raises
becomes ``DockerError`` (or ``DockerUnavailable`` when no engine answers) here, so the
core never sees docker's exceptions.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors
import requests

from reconciler.errors import DockerError, DockerUnavailable
from reconciler.model import container
from reconciler.reconcile.observed import ObservedContainer, ObservedImage


def connect(timeout: float = 30.0) -> Any:
    """A client for the engine at DOCKER_HOST; raises DockerUnavailable if none answers."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    _probe(where, timeout)
    client = None
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        if client is not None:
            client.close()
        raise DockerUnavailable(f"no Docker engine answers at {where}: {exc}") from exc
    return client


def socket_path() -> str:
    """The engine's unix socket (from DOCKER_HOST), which Falco's container mounts too."""
    parsed = urllib.parse.urlparse(os.environ.get("DOCKER_HOST", ""))
    return parsed.path if parsed.scheme == "unix" and parsed.path else container.DOCKER_SOCKET


def _probe(where: str, timeout: float) -> None:
    """Fail fast, before the SDK (which leaks its session when its constructor fails)."""
    parsed = urllib.parse.urlparse(where)
    try:
        if parsed.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(timeout)
                probe.connect(parsed.path)
        elif parsed.scheme in ("tcp", "http", "https") and parsed.hostname:
            socket.create_connection((parsed.hostname, parsed.port or 2375), timeout).close()
    except OSError as exc:
        reason = exc.strerror or exc
        raise DockerUnavailable(f"no Docker engine answers at {where}: {reason}") from exc


def _observed(attrs: dict[str, Any]) -> ObservedContainer:
    config = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    env = []
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env.append((key, value))
    return ObservedContainer(
        id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        image=config.get("Image", ""),
        status=state.get("Status", "unknown"),
        labels=tuple(sorted((config.get("Labels") or {}).items())),
        env=tuple(env),
        exit_code=state.get("ExitCode"),
        privileged=bool((attrs.get("HostConfig") or {}).get("Privileged")),
        image_id=attrs.get("Image", ""),
        restart_policy=((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get(
            "Name", ""),
    )


def _image(client: Any, ref: str) -> Any | None:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise DockerError(f"cannot inspect image {ref}: {exc}") from exc


def observe_image(
    client: Any, ref: str, *, ask_registry: bool, running_image_id: str = ""
) -> ObservedImage:
    """The local image for ``ref``; when asked, the digest its registry serves now and the
    digests of the image the container runs.

    The registry is asked without pulling (a distribution inspect), so a plan stays free of
    changes; an unreachable registry just leaves the remote digest unknown.
    """
    local = _image(client, ref)
    remote, running = None, ()
    if ask_registry:
        try:
            remote = client.images.get_registry_data(ref).id
        except (docker.errors.DockerException, requests.RequestException):
            remote = None
        image = _image(client, running_image_id) if running_image_id else None
        running = tuple(image.attrs.get("RepoDigests") or ()) if image is not None else ()
    return ObservedImage(ref, local.id if local is not None else None, remote, running)


def network_gateway(client: Any, name: str) -> str:
    """The gateway address of a Docker network: where its containers reach this host."""
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound as exc:
        raise DockerError(f"Docker network {name!r} (falco.network) does not exist") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise DockerError(f"cannot inspect network {name}: {exc}") from exc
    for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    raise DockerError(f"Docker network {name!r} has no gateway address for Falco to reach us")


def observe_containers(client: Any, names: Iterable[str]) -> tuple[ObservedContainer, ...]:
    """Our labelled containers plus any container holding one of ``names``."""
    found: dict[str, ObservedContainer] = {}
    try:
        for item in client.containers.list(
            all=True, filters={"label": f"{container.LABEL_MANAGED}=true"}
        ):
            found[item.id] = _observed(item.attrs)
        for name in names:
            try:
                item = client.containers.get(name)
            except docker.errors.NotFound:
                continue
            found[item.id] = _observed(item.attrs)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise DockerError(f"cannot list containers: {exc}") from exc
    return tuple(sorted(found.values(), key=lambda c: (c.name, c.id)))
