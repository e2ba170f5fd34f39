"""The one composition root: settings -> engine, store, planner, builder, deployer, modules.

``plan``, ``apply``, ``build`` and the daemon all get their parts here, so the apply
machinery is wired once: whatever applies a plan gets the same builder, deployer and
kernel-module loader from the same settings. ``open`` connects to the engine and closes
it after; the daemon opens one per pass and keeps the long-lived parts (the store's
verdict cache, the manifest cache) across passes in a ``Shared``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from reconciler import builder, logs
from reconciler.apply import deploy, executor, fetcher, modules
from reconciler.edges.docker import client as docker_client
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.host import crypto, kmod
from reconciler.edges.http import requester
from reconciler.edges.store import signedindex
from reconciler.edges.store.local import Store
from reconciler.httpd.files import StoreFiles
from reconciler.loadtest import gate as loadtest_gate
from reconciler.loadtest import tester
from reconciler.loadtest.policy import Policy as LoadTestPolicy
from reconciler.model.asking import RequestOutcome
from reconciler.model.buildrequests import Requested
from reconciler.model.netpolicy import UrlPolicy
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe import survey
from reconciler.plan import planner
from reconciler.settings import Settings

log = logs.get(__name__)


@dataclass(frozen=True)
class Progress:
    """Where live progress goes (a terminal display, or nothing under systemd)."""

    build: builder.Progress | None = None
    pull: deploy.PullProgress | None = None


@dataclass
class Shared:
    """What outlives one pass: verdicts of store files, manifests by tree, the upstream
    reconcilers' indexes (with their ETags)."""

    store: Store
    manifests: planner.ManifestCache = field(default_factory=planner.ManifestCache)
    indexes: survey.IndexCache = field(default_factory=survey.IndexCache)

    @classmethod
    def for_settings(cls, settings: Settings) -> Shared:
        return cls(Store(settings.store))


@dataclass
class Runtime:
    settings: Settings
    engine: ContainerEngine
    shared: Shared
    progress: Progress = field(default_factory=Progress)

    @property
    def store(self) -> Store:
        return self.shared.store

    def planner(self, *, repo: str | None = None, ref: str | None = None) -> planner.Planner:
        """The planner, reading ``repo`` at ``ref`` when given (the daemon pins a revision)."""
        conf = self.settings
        if repo is not None or ref is not None:
            conf = replace(conf, repo=repo or conf.repo, ref=ref or conf.ref)
        return planner.Planner(conf, self.engine, self.store, self.shared.manifests,
                               indexes=self.shared.indexes)

    def build_config(self, *, module_name: str = "falco",
                     device_name: str = "falco") -> builder.BuildConfig:
        conf = self.settings
        gate = None
        if conf.load_test is not LoadTestPolicy.OFF:
            gate = loadtest_gate.Gate(self.engine, conf.load_test, tester.Setup(
                conf.state_dir, conf.source, conf.base_image, conf.build_timeout))
        return builder.BuildConfig(
            state_dir=conf.state_dir, store=conf.store, source=conf.source,
            base_image=conf.base_image, jobs=conf.build_jobs, timeout=conf.build_timeout,
            module_name=module_name, device_name=device_name, load_test=gate,
            url_policy=UrlPolicy(conf.kernel_url_allow, conf.kernel_url_max_bytes),
        )

    def build(
        self, requests: Sequence[builder.BuildRequest],
        config: builder.BuildConfig | None = None,
    ) -> Sequence[builder.BuildOutcome]:
        """Build ``requests``; SIGTERM (systemd, CI) cancels them like Ctrl-C, so build
        containers and temp folders go instead of waiting for a half-hour compile."""
        with builder.sigterm_as_interrupt():
            return builder.build_all(requests, config or self.build_config(), self.engine,
                                     progress=self.progress.build)

    def sign_index(self) -> bool:
        """On a build host with ``index_signing_key``: sign what the store holds again if
        it changed or half its validity passed (``edges.store.signedindex``)."""
        conf = self.settings
        if conf.index_signing_key is None:
            return False
        key = crypto.load_signing_key(conf.index_signing_key)
        signed = signedindex.resign(
            self.store.root, key_id=key.key_id, sign=key.sign,
            signer=conf.hostname or socket.gethostname(),
            entries=StoreFiles(self.store).index(), expiry=conf.index_expiry,
            now=dt.datetime.now(dt.UTC))
        if signed:
            log.info("index.signed", key=key.key_id[:12])
        return signed

    def deployer(self) -> deploy.FalcoDeployer:
        return deploy.FalcoDeployer(self.engine, self.store, settle_seconds=self.settings.settle,
                                    ready_timeout=self.settings.ready_timeout,
                                    stop_timeout=self.settings.stop_timeout,
                                    pull_progress=self.progress.pull)

    def module_loader(self) -> modules.ModuleLoader:
        commands = kmod.ModuleCommands(insmod=self.settings.insmod_command,
                                       rmmod=self.settings.rmmod_command)
        return modules.ModuleLoader(self.engine, self.store, commands,
                                    stop_timeout=self.settings.stop_timeout)

    def request_builds(self, keys: Sequence[Requested], hostname: str) -> RequestOutcome:
        """Ask the upstreams that are build hosts for ``keys`` (``build: never``)."""
        return requester.request_builds(self.settings.upstreams, keys,
                                            self.settings.state_dir, hostname)

    def executor(self) -> executor.Executor:
        return executor.Executor(
            self.store, self.build, self.deployer().apply, self.module_loader().apply,
            self.request_builds,
            fetch=fetcher.Fetcher(self.store, self.settings.upstreams,
                                  trusted_keys=self.settings.trusted_keys).fetch,
            build_fallback=self.settings.build is BuildPolicy.MISSING)


Connect = Callable[[float], ContainerEngine]


@contextlib.contextmanager
def open_runtime(
    settings: Settings, *, timeout: float = 30.0, shared: Shared | None = None,
    progress: Progress | None = None, connect: Connect = docker_client.connect,
) -> Iterator[Runtime]:
    """A runtime on the engine at DOCKER_HOST, closed when the block ends."""
    engine = connect(timeout)
    try:
        yield Runtime(settings, engine, shared or Shared.for_settings(settings),
                      progress or Progress())
    finally:
        engine.close()
