"""The few Docker SDK calls a build makes, with docker's errors translated at this edge.

Every container we start carries ``io.falco-reconciler.role=builder`` and an owner label
(``<hostname>:<pid>``), is removed after use, and is force-removed on the next start if
its owner process is gone (``remove_leftovers``): a crash or ``kill -9`` leaves nothing
behind for long. ``kill_all`` stops every container this engine runs, so an interrupt in
the main thread ends the builds of every worker thread at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests

from reconciler.errors import DockerError, DockerUnavailable
from reconciler.model.artifacts import store_arch

LABEL_ROLE = "io.falco-reconciler.role"
LABEL_OWNER = "io.falco-reconciler.owner"
LABEL_STEP = "io.falco-reconciler.step"
LABEL_ARTIFACT = "io.falco-reconciler.artifact"
ROLE_BUILDER = "builder"

_SDK_ERRORS = (docker.errors.DockerException, requests.RequestException)


@dataclass(frozen=True)
class Mount:
    """A bind mount: ``source`` on the host appears at ``target`` in the container."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RunResult:
    """How a container ended: its exit code (None if it timed out) and its whole output."""

    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Cancelled(DockerError):
    """The engine was told to stop (interrupt) before or while a container ran."""

    transient = False


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (an owner label's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _translate(what: str, exc: Exception) -> DockerError:
    if isinstance(exc, requests.ConnectionError) or "Connection aborted" in str(exc):
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return DockerUnavailable(f"no Docker engine answers at {where} ({what}): {exc}")
    return DockerError(f"{what}: {exc}")


@dataclass
class Engine:
    """Runs labelled one-shot containers on ``client`` (a ``docker.DockerClient``)."""

    client: Any
    _live: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def architecture(self) -> str:
        """The engine's machine (``x86_64``, ``aarch64``), '' if it does not say."""
        try:
            arch = str(self.client.info().get("Architecture", ""))
        except _SDK_ERRORS as exc:
            raise _translate("cannot ask the engine for its architecture", exc) from exc
        try:
            return store_arch(arch) if arch else ""
        except ValueError:
            return arch

    # -- images -----------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        """The id of a local image, or None when the engine has no such image."""
        try:
            image = self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
        except _SDK_ERRORS as exc:
            raise _translate(f"cannot inspect image {ref}", exc) from exc
        return str(image.id)

    def ensure_image(self, ref: str) -> str:
        """The id of ``ref``, pulled first if the engine does not have it."""
        found = self.image_id(ref)
        if found is not None:
            return found
        try:
            image = self.client.images.pull(ref)
        except _SDK_ERRORS as exc:
            raise _translate(f"image {ref} is not present and cannot be pulled", exc) from exc
        return str(image.id)

    # -- containers -------------------------------------------------------------------

    def cancel(self) -> None:
        """Refuse new containers and kill the running ones (Ctrl-C, SIGTERM)."""
        self._cancelled.set()
        self.kill_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def kill_all(self) -> None:
        with self._lock:
            live = list(self._live.values())
        for container in live:
            with contextlib.suppress(*_SDK_ERRORS):
                container.kill()

    def run(
        self,
        image: str,
        script: str,
        *,
        mounts: Sequence[Mount] = (),
        network: str = "none",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        environment: Mapping[str, str] | None = None,
        commit_to: tuple[str, Mapping[str, str]] | None = None,
    ) -> RunResult:
        """Run ``script`` with ``/bin/sh -c`` in a fresh container, wait, collect, remove.

        With ``commit_to=(repository:tag, labels)`` a container that succeeded is committed
        to that image before it is removed.
        """
        if self.cancelled:
            raise Cancelled("the build was interrupted")
        all_labels = {LABEL_ROLE: ROLE_BUILDER, LABEL_OWNER: owner_label(), **(labels or {})}
        volumes = {
            str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
            for m in mounts
        }
        try:
            container = self.client.containers.create(
                image,
                command=["/bin/sh", "-c", script],
                labels=all_labels,
                network_mode=network,
                volumes=volumes,
                environment=dict(environment or {}),
            )
        except _SDK_ERRORS as exc:
            raise _translate(f"cannot create a container from {image}", exc) from exc
        with self._lock:
            self._live[container.id] = container
        try:
            return self._start_and_wait(container, timeout, commit_to)
        finally:
            with self._lock:
                self._live.pop(container.id, None)
            with contextlib.suppress(docker.errors.NotFound):
                try:
                    container.remove(force=True)
                except _SDK_ERRORS as exc:
                    if not isinstance(exc, docker.errors.NotFound):
                        raise _translate("cannot remove a build container", exc) from exc

    def _start_and_wait(
        self, container: Any, timeout: float | None,
        commit_to: tuple[str, Mapping[str, str]] | None,
    ) -> RunResult:
        try:
            if self.cancelled:
                raise Cancelled("the build was interrupted")
            container.start()
            timed_out = False
            try:
                status = container.wait(timeout=timeout)
                exit_code: int | None = int(status.get("StatusCode", -1))
            except requests.exceptions.ReadTimeout:
                timed_out, exit_code = True, None
            except requests.ConnectionError as exc:
                # A read timeout on a unix socket can surface as a ConnectionError.
                if "timed out" not in str(exc).lower():
                    raise
                timed_out, exit_code = True, None
            if timed_out:
                with contextlib.suppress(*_SDK_ERRORS):
                    container.kill()
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            if exit_code == 0 and commit_to is not None:
                reference, labels = commit_to
                repository, _, tag = reference.rpartition(":")
                container.commit(
                    repository=repository, tag=tag,
                    conf={"Labels": dict(labels), "Cmd": ["/bin/bash"]},
                )
        except _SDK_ERRORS as exc:
            raise _translate("a build container failed to run", exc) from exc
        if self.cancelled and exit_code != 0:
            raise Cancelled("the build was interrupted")
        return RunResult(exit_code=exit_code, output=output, timed_out=timed_out)

    def remove_leftovers(self) -> int:
        """Force-remove builder containers whose owner process on this host is gone."""
        host = socket.gethostname()
        removed = 0
        try:
            found = self.client.containers.list(
                all=True, filters={"label": f"{LABEL_ROLE}={ROLE_BUILDER}"}
            )
            for container in found:
                owner = (container.labels or {}).get(LABEL_OWNER, "")
                owner_host, _, pid = owner.rpartition(":")
                if owner_host != host or not pid.isdigit():
                    continue
                if int(pid) == os.getpid() or pid_alive(int(pid)):
                    continue
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
                    removed += 1
        except _SDK_ERRORS as exc:
            raise _translate("cannot clean leftover build containers", exc) from exc
        return removed
