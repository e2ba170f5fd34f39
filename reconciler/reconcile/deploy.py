"""Change the Falco container, safely: never before its driver is served, never left broken.

For a create or replace:

1. the image is present (pulled when missing, or always with ``pull: always``);
2. the driver artifact it will load is in the store and our server answers a ``HEAD`` on
   the exact URL the container's loader will request;
3. the old container (if any) is renamed aside and stopped, the new one created and
   started;
4. it must stay up for the settle period; if it exits, its last log lines are kept, it
   is removed, and the old container is renamed back and started again.

Only then is the old container removed. A remove just stops and removes our container.
"""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker.errors
import docker.utils
import requests

from reconciler import logs
from reconciler.edges import kmod
from reconciler.edges.store import Store
from reconciler.errors import DockerError, ReconcilerError
from reconciler.manifests.models import PullPolicy
from reconciler.model.artifacts import parse_relpath
from reconciler.model.container import ContainerSpec
from reconciler.model.versions import FalcoVersion, uses_arch_folder
from reconciler.reconcile.desired import DesiredState
from reconciler.reconcile.plan import Change, Op

log = logs.get(__name__)
_SDK_ERRORS = (docker.errors.DockerException, requests.RequestException)


class FalcoStartError(ReconcilerError):
    """The new Falco container did not stay up; the previous one was put back."""


class DriverNotServed(ReconcilerError):
    """The driver the container would load is not served at the URL it will use."""

    transient = True


@dataclass
class FalcoDeployer:
    client: Any
    store: Store
    settle_seconds: float = 10.0
    stop_timeout: int = 10

    # -- checks -------------------------------------------------------------------------

    def check_served(self, spec: ContainerSpec, falco_version: str, base_url: str) -> None:
        """``base_url`` is the container's own DRIVERS_REPO: the check uses what it uses."""
        if not spec.driver:
            return
        key = parse_relpath(spec.driver)
        if key is None or self.store.lookup(key) is None:
            raise DriverNotServed(f"driver {spec.driver} is not in the store (or does not verify)")
        with_arch = uses_arch_folder(FalcoVersion.parse(falco_version))
        url = base_url + key.url_path(with_arch=with_arch)
        request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - our own http URL
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
                status = answer.status
        except (urllib.error.URLError, OSError) as exc:
            raise DriverNotServed(
                f"the driver server does not serve {url}: {exc}; run `reconciler serve` or "
                "the daemon with the same --store and --listen"
            ) from exc
        if status != 200:
            raise DriverNotServed(f"HEAD {url} answered {status}, not 200")

    def ensure_image(self, ref: str, pull: PullPolicy) -> None:
        try:
            if pull is PullPolicy.MISSING:
                try:
                    self.client.images.get(ref)
                    return
                except docker.errors.ImageNotFound:
                    pass
            log.info("image.pull", image=ref)
            repository, tag = docker.utils.parse_repository_tag(ref)
            started = time.monotonic()
            layers_done: set[str] = set()
            for event in self.client.api.pull(repository, tag=tag or "latest", stream=True,
                                              decode=True):
                if "error" in event:
                    raise DockerError(f"cannot pull {ref}: {event['error']}")
                status = event.get("status", "")
                if status in ("Pull complete", "Already exists"):
                    layers_done.add(event.get("id", ""))
                    log.info("image.pull.progress", image=ref, layers_done=len(layers_done),
                             seconds=round(time.monotonic() - started, 1))
            log.info("image.pulled", image=ref, seconds=round(time.monotonic() - started, 1))
        except _SDK_ERRORS as exc:
            raise DockerError(f"cannot pull {ref}: {exc}") from exc

    # -- container operations -------------------------------------------------------------

    def _get(self, ident: str) -> Any | None:
        try:
            return self.client.containers.get(ident)
        except docker.errors.NotFound:
            return None

    def _create(self, spec: ContainerSpec, labels: dict[str, str]) -> Any:
        volumes = {
            m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
            for m in spec.mounts
        }
        return self.client.containers.create(
            spec.image, list(spec.command) or None, name=spec.name,
            environment=[f"{k}={v}" for k, v in spec.env], volumes=volumes,
            privileged=spec.privileged, network_mode=spec.network,
            restart_policy={"Name": spec.restart_policy}, labels=labels, detach=True,
        )

    def _settle(self, made: Any) -> str | None:
        """None if the container stayed up (and healthy, if it has a check), else why not."""
        deadline = time.monotonic() + self.settle_seconds
        while True:
            made.reload()
            state = made.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") != "running" or state.get("Restarting"):
                return f"exited with code {state.get('ExitCode')}"
            if health == "unhealthy":
                return "health check failed"
            if time.monotonic() >= deadline and health in (None, "healthy"):
                return None
            if time.monotonic() >= deadline + 60:
                return f"health check still {health} after the settle period"
            time.sleep(0.2)

    def _logs_tail(self, made: Any, lines: int = 20) -> str:
        try:
            return bytes(made.logs(tail=lines)).decode(errors="replace").rstrip()
        except _SDK_ERRORS:
            return ""

    def replace(self, change: Change, desired: DesiredState) -> str:
        spec = change.spec
        assert spec is not None and desired.container is not None
        want = desired.container
        self.ensure_image(spec.image, self._pull_policy(desired))
        self.check_served(spec, want.falco_version, want.drivers_url)
        labels = spec.labels(revision=desired.revision, host=want.host)
        old = self._get(change.replaces) if change.replaces else None
        old_name = old.name if old is not None else None
        was_up = old is not None and old.status in ("running", "restarting")
        try:
            if old is not None:
                # Stop before the rename: the engine refuses to rename a container that is
                # in a restart loop (a crash-looping old Falco is a common reason to replace).
                if was_up:
                    old.stop(timeout=self.stop_timeout)
                old.rename(f"{spec.name}-previous-{old.id[:8]}")
            made = self._create(spec, labels)
            made.start()
            problem = self._settle(made)
            if problem is not None:
                tail = self._logs_tail(made)
                with contextlib.suppress(*_SDK_ERRORS):
                    made.remove(force=True)
                restored = self._restore(old, old_name, start=was_up)
                raise FalcoStartError(
                    f"new Falco container {spec.name} {problem}; "
                    f"{restored}. Last log lines:\n{tail}"
                )
            if old is not None:
                old.remove(force=True)
        except _SDK_ERRORS as exc:
            self._restore(old, old_name, start=was_up)
            raise DockerError(f"cannot replace container {spec.name}: {exc}") from exc
        log.info("falco.started", container=spec.name, id=made.id[:12], image=spec.image)
        return f"started {made.id[:12]} ({spec.image})"

    def _restore(self, old: Any | None, name: str | None, *, start: bool) -> str:
        """Put the previous container back under its name, running if it was."""
        if old is None or name is None:
            return "there was no previous container"
        with contextlib.suppress(*_SDK_ERRORS):
            stray = self._get(name)
            if stray is not None and stray.id != old.id:
                stray.remove(force=True)
            old.reload()
            if old.name != name:
                old.rename(name)
            if start and old.status != "running":
                old.start()
            return "the previous container was put back"
        return "the previous container could not be put back"

    def _pull_policy(self, desired: DesiredState) -> PullPolicy:
        return desired.container.pull if desired.container else PullPolicy.MISSING

    def remove(self, change: Change) -> str:
        found = self._get(change.replaces or change.name)
        if found is None:
            return "already gone"
        try:
            found.stop(timeout=self.stop_timeout)
            found.remove(force=True)
        except _SDK_ERRORS as exc:
            raise DockerError(f"cannot remove container {change.name}: {exc}") from exc
        return "removed"

    def apply(self, change: Change, desired: DesiredState) -> str:
        if change.op is Op.REMOVE:
            return self.remove(change)
        return self.replace(change, desired)


@dataclass
class ModuleLoader:
    """Insert the module a kmod-preloaded Falco uses; swap it when another version is in.

    Swapping needs the module unused, so our Falco container is stopped for the swap and
    started again afterwards (a following container change may then replace it).
    """

    client: Any
    store: Store
    commands: kmod.ModuleCommands

    def apply(self, change: Change, desired: DesiredState) -> str:
        key = change.artifact
        assert key is not None
        found = self.store.lookup(key)
        if found is None:
            raise kmod.ModuleError(f"{key.relpath} is not in the store (or does not verify)")
        if change.op is not Op.REPLACE:
            self.commands.insert(found.path)
            return f"inserted {found.path.name}"
        name = desired.container.spec.name if desired.container else ""
        running = None
        try:
            candidate = self.client.containers.get(name) if name else None
            if candidate is not None and candidate.status == "running":
                running = candidate
                running.stop(timeout=10)
        except docker.errors.NotFound:
            running = None
        except _SDK_ERRORS as exc:
            raise DockerError(f"cannot stop {name} to swap the kernel module: {exc}") from exc
        try:
            self.commands.remove(kmod.MODULE_NAME)
            self.commands.insert(found.path)
        finally:
            if running is not None:
                with contextlib.suppress(*_SDK_ERRORS):
                    running.start()
        return f"swapped the kernel module for {found.path.name}"
