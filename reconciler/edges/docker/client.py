"""The Docker engine, through the SDK: the one module that imports it.

Found through the usual ``DOCKER_HOST`` (``docker.from_env``). ``Docker`` offers the few
calls the reconciler makes, by container id or name, and returns plain values
(``model.observations``); every SDK exception becomes ``DockerError`` (or
``DockerUnavailable`` when no engine answers) in ``_call``, and nowhere else. A lookup
of something the engine does not have returns None rather than raising.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import docker
import docker.errors
import docker.utils
import requests

from reconciler.errors import DockerError, DockerUnavailable
from reconciler.model import container
from reconciler.model.container import BindMount
from reconciler.model.observations import ObservedContainer

T = TypeVar("T")
_MISSING: Any = object()


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def socket_path() -> str:
    """The engine's unix socket (from DOCKER_HOST), which Falco's container mounts too."""
    parsed = urllib.parse.urlparse(os.environ.get("DOCKER_HOST", ""))
    return parsed.path if parsed.scheme == "unix" and parsed.path else container.DOCKER_SOCKET


def _call(what: str, call: Callable[[], T], *, missing: T = _MISSING) -> T:
    """Run one SDK call; the only place its errors are translated."""
    try:
        return call()
    except docker.errors.NotFound as exc:
        if missing is not _MISSING:
            return missing
        raise DockerError(f"{what}: {_said(exc)}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        if isinstance(exc, requests.ConnectionError) and "timed out" not in str(exc).lower():
            raise DockerUnavailable(
                f"no Docker engine answers at {engine_address()} ({what}): {exc}") from exc
        raise DockerError(f"{what}: {_said(exc)}") from exc


def _said(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


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


def connect(timeout: float = 30.0) -> Docker:
    """The engine at DOCKER_HOST; raises DockerUnavailable if none answers."""
    where = engine_address()
    _probe(where, timeout)
    client = None
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        if client is not None:
            client.close()
        raise DockerUnavailable(f"no Docker engine answers at {where}: {exc}") from exc
    return Docker(client)


def _observed(attrs: Mapping[str, Any]) -> ObservedContainer:
    config = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    host_config = attrs.get("HostConfig") or {}
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
        privileged=bool(host_config.get("Privileged")),
        image_id=attrs.get("Image", ""),
        restart_policy=(host_config.get("RestartPolicy") or {}).get("Name", ""),
        restarting=bool(state.get("Restarting")),
        health=(state.get("Health") or {}).get("Status"),
        created=str(attrs.get("Created", "")),
        addresses=tuple(sorted(
            (name, str(net["IPAddress"]))
            for name, net in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items()
            if net and net.get("IPAddress"))),
    )


class EventStream:
    """Engine events as dicts; ``close()`` from another thread ends the iteration."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        iterator = iter(self._stream)
        while True:
            event = _call("reading engine events", lambda: next(iterator, None))
            if event is None:
                return
            yield event

    def close(self) -> None:
        _call("closing the event stream", self._stream.close)


class Docker:
    """The engine: observation, Falco's container operations, one-shot jobs, events."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._api = client.api

    def close(self) -> None:
        _call("closing the engine connection", self._client.close)

    # -- observation ------------------------------------------------------------------

    def container(self, ident: str) -> ObservedContainer | None:
        """The container with this id or name, or None."""
        attrs = _call(f"cannot inspect container {ident}",
                      lambda: self._api.inspect_container(ident), missing=None)
        return _observed(attrs) if attrs is not None else None

    def containers(self, labels: Mapping[str, str]) -> tuple[ObservedContainer, ...]:
        """Every container (running or not) carrying all of ``labels``."""
        wanted = [f"{k}={v}" for k, v in labels.items()]
        found = _call("cannot list containers",
                      lambda: self._api.containers(all=True, filters={"label": wanted}))
        observed = (self.container(item["Id"]) for item in found)
        return tuple(sorted((c for c in observed if c is not None), key=lambda c: (c.name, c.id)))

    def image_id(self, ref: str) -> str | None:
        attrs = _call(f"cannot inspect image {ref}", lambda: self._api.inspect_image(ref),
                      missing=None)
        return str(attrs["Id"]) if attrs is not None else None

    def repo_digests(self, image_id: str) -> tuple[str, ...]:
        attrs = _call(f"cannot inspect image {image_id}",
                      lambda: self._api.inspect_image(image_id), missing=None)
        return tuple(attrs.get("RepoDigests") or ()) if attrs is not None else ()

    def registry_digest(self, ref: str) -> str | None:
        """The digest the registry serves for ``ref`` now, without pulling; None when the
        registry cannot say (unreachable, unknown tag)."""
        try:
            data = _call(f"cannot ask the registry about {ref}",
                         lambda: self._api.inspect_distribution(ref))
        except DockerError:
            return None
        digest = (data.get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None

    def network_gateway(self, name: str) -> str:
        """The gateway address of a Docker network: where its containers reach this host."""
        attrs = _call(f"cannot inspect network {name}", lambda: self._api.inspect_network(name),
                      missing=None)
        if attrs is None:
            raise DockerError(f"Docker network {name!r} (falco.network) does not exist")
        for config in (attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway"):
                return str(config["Gateway"])
        raise DockerError(f"Docker network {name!r} has no gateway address for Falco to reach us")

    def architecture(self) -> str:
        """The engine's machine as it reports it (``x86_64``, ``aarch64``), '' if unsaid."""
        info = _call("cannot ask the engine for its architecture", self._api.info)
        return str(info.get("Architecture", ""))

    # -- images -----------------------------------------------------------------------

    def pull(self, ref: str, progress: Callable[[Mapping[str, Any]], None] | None = None) -> str:
        """Pull ``ref``, reporting each progress event; the image id."""
        repository, tag = docker.utils.parse_repository_tag(ref)

        def pulling() -> None:
            for event in self._api.pull(repository, tag=tag or "latest", stream=True,
                                        decode=True):
                if "error" in event:
                    raise DockerError(f"cannot pull {ref}: {event['error']}")
                if progress is not None:
                    progress(event)

        _call(f"cannot pull {ref}", pulling)
        found = self.image_id(ref)
        if found is None:
            raise DockerError(f"pulled {ref}, but the engine has no such image")
        return found

    # -- containers -------------------------------------------------------------------

    def create(
        self, *, image: str, name: str | None = None, command: Sequence[str] = (),
        env: Sequence[tuple[str, str]] = (), mounts: Sequence[BindMount] = (),
        network: str = "none", privileged: bool = False, restart_policy: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Create (not start) a container; its id."""
        binds = {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                 for m in mounts}

        def creating() -> Any:
            host_config = self._api.create_host_config(
                binds=binds, privileged=privileged, network_mode=network,
                restart_policy={"Name": restart_policy} if restart_policy else None,
            )
            return self._api.create_container(
                image, list(command) or None, name=name,
                environment=[f"{k}={v}" for k, v in env], labels=dict(labels or {}),
                volumes=[m.target for m in mounts], host_config=host_config,
            )

        made = _call(f"cannot create a container from {image}", creating)
        return str(made["Id"])


    def start(self, ident: str) -> None:
        _call(f"cannot start container {ident}", lambda: self._api.start(ident))

    def stop(self, ident: str, timeout: int) -> None:
        _call(f"cannot stop container {ident}", lambda: self._api.stop(ident, timeout=timeout))

    def kill(self, ident: str) -> None:
        try:
            _call(f"cannot kill container {ident}", lambda: self._api.kill(ident), missing=None)
        except DockerError:
            return  # not running (any more): nothing to kill

    def rename(self, ident: str, name: str) -> None:
        _call(f"cannot rename container {ident} to {name}",
              lambda: self._api.rename(ident, name))

    def remove(self, ident: str) -> None:
        """Force-remove; a container already gone, or going, is fine."""
        try:
            _call(f"cannot remove container {ident}",
                  lambda: self._api.remove_container(ident, force=True), missing=None)
        except DockerError as exc:
            if "already in progress" not in str(exc):
                raise

    def logs(self, ident: str, tail: int | None = None) -> str:
        data = _call(f"cannot read the logs of {ident}",
                     lambda: self._api.logs(ident, stdout=True, stderr=True,
                                            tail=tail if tail is not None else "all"),
                     missing=b"")
        return bytes(data).decode("utf-8", "replace")

    def wait(self, ident: str, timeout: float | None) -> int | None:
        """The exit code once it ends, or None if ``timeout`` passed first."""

        def waiting() -> int | None:
            try:
                return int(self._api.wait(ident, timeout=timeout).get("StatusCode", -1))
            except requests.exceptions.ReadTimeout:
                return None
            except requests.ConnectionError as exc:
                # A read timeout on a unix socket can surface as a ConnectionError.
                if "timed out" in str(exc).lower():
                    return None
                raise

        return _call(f"cannot wait for container {ident}", waiting)

    def commit(self, ident: str, reference: str, labels: Mapping[str, str],
               command: Sequence[str]) -> None:
        repository, _, tag = reference.rpartition(":")
        _call(f"cannot commit container {ident} to {reference}",
              lambda: self._api.commit(ident, repository=repository, tag=tag,
                                       conf={"Labels": dict(labels), "Cmd": list(command)}))

    # -- events -----------------------------------------------------------------------

    def events(self, filters: Mapping[str, Any]) -> EventStream:
        stream = _call("cannot follow engine events",
                       lambda: self._api.events(decode=True, filters=dict(filters)))
        return EventStream(stream)
