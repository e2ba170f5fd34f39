"""Change the Falco container, safely: never before its driver is served, never left broken.

Apply-level logic above the thin engine adapter (``edges.docker``). For a create or
replace:

1. the image is present (pulled when missing, or always with ``pull: always``);
2. the driver artifact it will load is in the store and our server answers a ``HEAD`` on
   the exact URL the container's loader will request;
3. the old container (if any) is stopped and renamed aside (``model.container.aside_name``);
   the new one is created and started;
4. it must be ready: where Falco's web server is on (``falco.webserverPort``, 8765 by
   default) its ``/healthz`` must answer 200 within the ready timeout, and the container
   must then stay up a short confirm window (Falco starts its web server just before it
   opens the driver, so a driver it refuses ends it within that window); without a web
   server it must stay up for the settle period. If it exits or never gets ready, its
   last log lines are kept, it is removed, and the old container is renamed back and
   started again.

Only then is the old container removed. A remove just stops and removes our container.

For Falco 0.40+ the driver-loader image runs first, as its own step, while the old Falco
still runs: a failed download leaves everything as it was. A kernel module in use cannot be
removed, though, so that run cannot swap the module a running Falco holds; when the driver
is a module and the old Falco was running, the loader runs once more in step 3, after the
old Falco stopped (it then reuses the file it has just downloaded from us).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import logs
from reconciler.desired.state import DesiredState
from reconciler.edges.clock import Clock, SystemClock
from reconciler.edges.docker.protocol import ContainerEngine, create_falco
from reconciler.edges.http.probe import HttpProber, Prober
from reconciler.edges.store.local import Store
from reconciler.errors import DeployError, DockerError, DriverNotServed, FalcoStartError, HttpError
from reconciler.model.artifacts import ArtifactKey, DriverKind, parse_relpath
from reconciler.model.container import LABEL_MANAGED, ContainerSpec, LoaderSpec, aside_name
from reconciler.model.generations import PROBE_PATH
from reconciler.model.modes import PullPolicy
from reconciler.model.observations import ObservedContainer
from reconciler.model.versions import FalcoVersion, uses_arch_folder
from reconciler.plan.diff import Change, Op, Reason

log = logs.get(__name__)
PullProgress = Callable[[str, Mapping[str, Any]], None]  # (image, the engine's event)
LABEL_ROLE = "io.falco-reconciler.role"
ROLE_LOADER = "driver-loader"
PUT_BACK = "the previous container was put back"  # what a rollback's message says


@dataclass
class FalcoDeployer:
    engine: ContainerEngine
    store: Store
    settle_seconds: float = 10.0
    stop_timeout: int = 10
    pull_progress: PullProgress | None = None
    loader_timeout: float = 300.0
    ready_timeout: float = 60.0
    # After /healthz answered: how long Falco must stay up still (at most the settle time).
    confirm_seconds: float = 2.0
    # Who asks our server and Falco's /healthz, and the clock the waits follow: the
    # seams the deploy logic's tests replace (edges.http.probe, edges.clock).
    prober: Prober = field(default_factory=HttpProber)
    clock: Clock = field(default_factory=SystemClock)

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
        try:
            status = self.prober.status("HEAD", url, 5.0)
        except HttpError as exc:
            raise DriverNotServed(
                f"the driver server does not serve {url}: {exc}; run `reconciler serve` or "
                "the daemon with the same --store and --listen"
            ) from exc
        if status != 200:
            raise DriverNotServed(f"HEAD {url} answered {status}, not 200")

    def ensure_image(self, ref: str, pull: PullPolicy) -> None:
        if pull is PullPolicy.MISSING and self.engine.image_id(ref) is not None:
            return
        log.info("image.pull", image=ref)
        started = self.clock.monotonic()

        layers_done: set[str] = set()

        def progress(event: Mapping[str, Any]) -> None:
            if event.get("status") in ("Pull complete", "Already exists"):
                layers_done.add(str(event.get("id", "")))
                log.info("image.pull.progress", image=ref, layers_done=len(layers_done),
                         seconds=round(self.clock.monotonic() - started, 1))
            if self.pull_progress is not None:
                self.pull_progress(ref, event)

        try:
            self.engine.pull(ref, progress)
        except DockerError as exc:
            raise DockerError(f"cannot pull {ref}: {exc}") from exc
        log.info("image.pulled", image=ref, seconds=round(self.clock.monotonic() - started, 1))

    # -- container operations -------------------------------------------------------------

    def _settle(self, ident: str,
                healthz: Callable[[ObservedContainer], str | None] | None = None) -> str | None:
        """None if the container got ready, else why not.

        Ready: up for the settle period; or, with ``healthz`` (the URL of Falco's
        ``/healthz`` once the container as just seen has an address), answering 200 within the ready
        timeout and still up a confirm window later. A health check the image declares
        must also end healthy."""
        started = self.clock.monotonic()
        settle_until = started + self.settle_seconds
        ready_at: float | None = None
        while True:
            found = self.engine.container(ident)
            if found is None:
                return "was removed"
            if found.status != "running" or found.restarting:
                return f"exited with code {found.exit_code}"
            if found.health == "unhealthy":
                return "health check failed"
            now = self.clock.monotonic()
            if healthz is not None and ready_at is None:
                url = healthz(found)
                if url is not None and self._answers(url):
                    ready_at = now
                    log.info("falco.ready", container=ident[:12], url=url,
                             seconds=round(now - started, 1))
                elif now >= started + self.ready_timeout:
                    return (f"did not answer {url or 'its /healthz'} within "
                            f"{self.ready_timeout:g} s")
            if ready_at is not None:
                done = now >= ready_at + min(self.confirm_seconds, self.settle_seconds)
            else:
                done = healthz is None and now >= settle_until
            if done and found.health in (None, "healthy"):
                return None
            if done and now >= (ready_at or settle_until) + 60:
                return f"health check still {found.health} after the settle period"
            # While /healthz is awaited, ask often: the wait is the restart's own latency.
            self.clock.sleep(0.05 if healthz is not None and ready_at is None else 0.2)

    @staticmethod
    def _healthz(network: str,
                 port: int | None) -> Callable[[ObservedContainer], str | None] | None:
        """Where a new container's ``/healthz`` answers: the loopback on the host network,
        else its address on its network; None when its web server is off."""
        if port is None:
            return None

        def url(found: ObservedContainer) -> str | None:
            if network == "host":
                return f"http://127.0.0.1:{port}/healthz"
            address = found.address_on(network)
            return f"http://{address}:{port}/healthz" if address else None

        return url

    def replace(self, change: Change, desired: DesiredState) -> str:
        spec = change.spec
        assert spec is not None and desired.container is not None
        want = desired.container
        self.ensure_image(spec.image, want.pull)
        self.check_served(spec, want.falco_version, want.drivers_url)
        labels = spec.labels(revision=desired.revision, host=want.host,
                             hostname=desired.hostname)
        old = self.engine.container(change.replaces) if change.replaces else None
        try:
            if old is not None:
                # Stop before the rename: the engine refuses to rename a container that is
                # in a restart loop (a crash-looping old Falco is a common reason to replace).
                if old.up:
                    self.engine.stop(old.id, self.stop_timeout)
                self.engine.rename(old.id, aside_name(spec.name, old.id))
                if old.up and _loads_module(change):
                    self._reload_module(spec, old)
            made = create_falco(self.engine, spec, labels)
            self.engine.start(made)
            problem = self._settle(made, self._healthz(spec.network, want.healthz_port))
            if problem is not None:
                tail = self._tail(made)
                with contextlib.suppress(DockerError):
                    self.engine.remove(made)
                restored = self._restore(old)
                raise FalcoStartError(
                    f"new Falco container {spec.name} {problem}; "
                    f"{restored}. Last log lines:\n{tail}", restored=restored == PUT_BACK,
                )
            if old is not None:
                self.engine.remove(old.id)
        except DockerError as exc:
            self._restore(old)
            raise DockerError(f"cannot replace container {spec.name}: {exc}") from exc
        log.info("falco.started", container=spec.name, id=made[:12], image=spec.image)
        return f"started {made[:12]} ({spec.image})"

    def _tail(self, ident: str) -> str:
        """The container's last log lines; none when it is already gone (or going)."""
        try:
            return self.engine.logs(ident, tail=20).rstrip()
        except DockerError:
            return ""

    def _reload_module(self, spec: ContainerSpec, old: ObservedContainer) -> None:
        """The loader again, now that the old Falco no longer holds the module."""
        assert spec.loader is not None
        failed, tail = self._loader_container(spec.loader)
        if failed:
            restored = self._restore(old)
            raise DeployError(f"{failed} once the old Falco stopped; {restored}. "
                              f"Last log lines:\n{tail}", restored=restored == PUT_BACK)

    def _restore(self, old: ObservedContainer | None) -> str:
        """Put the previous container back under its name, running if it was."""
        if old is None:
            return "there was no previous container"
        try:
            stray = self.engine.container(old.name)
            if stray is not None and stray.id != old.id:
                self.engine.remove(stray.id)
            now = self.engine.container(old.id)
            if now is None:
                return "the previous container could not be put back: it is gone"
            if now.name != old.name:
                self.engine.rename(old.id, old.name)
            if old.up and not now.running:
                self.engine.start(old.id)
        except DockerError:
            return "the previous container could not be put back"
        return PUT_BACK

    def remove(self, change: Change) -> str:
        found = self.engine.container(change.replaces or change.name)
        if found is None:
            return "already gone"
        try:
            if found.up:
                self.engine.stop(found.id, self.stop_timeout)
            self.engine.remove(found.id)
        except DockerError as exc:
            raise DockerError(f"cannot remove container {change.name}: {exc}") from exc
        return "removed"

    def run_loader(self, change: Change, desired: DesiredState) -> str:
        """The driver-loader image, run to completion: it must exit 0 before Falco starts.

        falcoctl reuses a driver file it finds in the shared /root/.falco without checking
        it, so the one it would reuse (and the probe link) is removed first: only the
        verified artifact we serve can end up loaded."""
        spec = change.spec
        assert spec is not None and spec.loader is not None and desired.container is not None
        loader, want = spec.loader, desired.container
        self.ensure_image(loader.image, want.pull)
        self.check_served(spec, want.falco_version, want.drivers_url)
        if change.artifact is not None:
            _clear_stale(Path(loader.mounts[0].source), change.artifact)
        failed, tail = self._loader_container(loader)
        if failed:
            raise DeployError(f"{failed}; Falco left as is. Last log lines:\n{tail}")
        log.info("falco.driver_loaded", loader=loader.image, driver=spec.driver)
        return f"{loader.image} loaded {spec.driver or 'the driver'}"

    def _loader_container(self, loader: LoaderSpec) -> tuple[str, str]:
        """Run the loader container to completion: ("" if it exited 0, else what it did;
        its last log lines)."""
        leftover = self.engine.container(loader.name)
        if leftover is not None:
            self.engine.remove(leftover.id)
        ident = self.engine.create(
            image=loader.image, name=loader.name, command=loader.args, env=loader.env,
            mounts=loader.mounts, network=loader.network, privileged=loader.privileged,
            labels={LABEL_MANAGED: "true", LABEL_ROLE: ROLE_LOADER},
        )
        try:
            self.engine.start(ident)
            code = self.engine.wait(ident, self.loader_timeout)
            tail = self.engine.logs(ident, tail=20).rstrip()
        finally:
            self.engine.remove(ident)
        if code == 0:
            return "", tail
        said = "did not finish" if code is None else f"exited with code {code}"
        return f"driver loader {loader.image} {said}", tail

    def _answers(self, url: str) -> bool:
        try:
            return self.prober.status("GET", url, 1.0) == 200
        except HttpError:
            return False

    def apply(self, change: Change, desired: DesiredState) -> str:
        if change.op is Op.REMOVE:
            return self.remove(change)
        if change.reason is Reason.LOADER_RUN:
            return self.run_loader(change, desired)
        return self.replace(change, desired)


def _loads_module(change: Change) -> bool:
    """Whether the change's Falco gets a kernel module from the driver-loader image."""
    return (change.spec is not None and change.spec.loader is not None
            and change.artifact is not None and change.artifact.kind is DriverKind.KMOD)


def _clear_stale(falco_home: Path, key: ArtifactKey) -> None:
    """Remove what falcoctl would reuse unchecked: its download of ``key`` and the probe
    link, so the loader downloads (and verifies nothing of) only what we serve now."""
    targets = [falco_home / key.driver_version / key.arch / key.filename]
    if key.kind is DriverKind.EBPF:
        targets.append(falco_home / Path(PROBE_PATH).name)
    for target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DeployError(f"cannot remove the stale driver {target}: {exc.strerror}") from exc
        log.info("falco.stale_driver_removed", path=str(target))
