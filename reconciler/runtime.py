"""The one composition root: settings -> engine, store, server, planner, builder, deployer,
modules, and the daemon around them.

``plan``, ``apply``, ``build``, ``serve`` and ``run`` all get their parts here, so each is
wired once: the store is constructed only by ``open_store`` (one verdict cache for the
planner, the builder and the server), the driver server only by ``driver_server``, and
whatever applies a plan gets the same builder, deployer and kernel-module loader from
the same settings. ``open_runtime`` connects to the engine with an API call's timeout and
closes it after; builds get a connection of their own with the build's long timeout
(committing a builder image can take minutes). The daemon (``open_daemon``) opens a
runtime per pass and keeps the long-lived parts (the store's verdict cache, the manifest
cache) across passes in a ``Shared``.

Whatever only applies, builds, serves or runs the daemon is imported where it is built
(the builder, the load test and its VM, the crypto stack signing modules and indexes, the
fetcher, the deployer, the server, the daemon's parts): a ``plan`` reads, observes and
diffs, and should not pay for the imports of the rest (``cli.parser`` does the same for
commands; tests/commands/test_plan.py holds a plan to it). The daemon's passes use this
module's runtime, so the daemon cannot be imported at the top either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import logs
from reconciler.edges import secrets
from reconciler.edges.docker import client as docker_client
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.git.source import GitManifests
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.host.reader import AptCache, HostFiles, ReportedHost
from reconciler.edges.state.files import LedgerFile, QueueFile
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.loadtest import quarantine
from reconciler.loadtest.policy import Policy as LoadTestPolicy
from reconciler.manifests import loading
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe import sources, survey
from reconciler.plan import planner
from reconciler.settings import Settings, parse_listen

if TYPE_CHECKING:
    from reconciler import builder
    from reconciler.apply import deploy, executor, modules
    from reconciler.daemon.building import Building
    from reconciler.daemon.wakeup import Wakeup
    from reconciler.daemon.webhook import WebhookServer
    from reconciler.edges.state.buildqueue import BuildQueue
    from reconciler.httpd.intake import Intake
    from reconciler.httpd.server import DriverServer
    from reconciler.loadtest import gate as loadtest_gate
    from reconciler.model.asking import RequestOutcome
    from reconciler.model.buildrequests import Requested

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
        return cls(open_store(settings))


def open_store(settings: Settings) -> Store:
    """The driver store: the only place one is constructed (its verdict cache is shared)."""
    return Store(settings.store)


def driver_server(store: Store, listen: tuple[str, int], *, workers: int | None = None,
                  intake: Intake | None = None) -> DriverServer:
    """The driver server: the only place one is constructed, for ``serve`` and ``run``
    alike (the descriptor limit it sizes its connections by is raised at the process
    edge, ``cli.entry``)."""
    from reconciler.httpd.server import DriverServer, ServerConfig  # noqa: PLC0415 - see above

    config = ServerConfig() if workers is None else ServerConfig(workers=max(1, workers))
    return DriverServer(store, listen, config=config, intake=intake)


Connect = Callable[[float], ContainerEngine]
# Seconds one engine API call may take (a stop adds its own grace period, a wait its own
# timeout); builds connect with ``build_timeout`` instead.
ENGINE_TIMEOUT = 60.0


@dataclass
class Runtime:
    """The parts one command or one daemon pass works with. ``engine`` answers API calls
    within ``ENGINE_TIMEOUT``; builds run on a second connection opened on first use with
    the build timeout, since a commit of a builder image sends nothing for minutes."""

    settings: Settings
    engine: ContainerEngine
    shared: Shared
    progress: Progress = field(default_factory=Progress)
    connect: Connect | None = None  # None: builds use ``engine`` (tests, benchmarks)
    _build_engine: ContainerEngine | None = field(default=None, init=False, repr=False)

    def build_engine(self) -> ContainerEngine:
        """The engine builds run on: connected with the build timeout, once."""
        if self.connect is None:
            return self.engine
        if self._build_engine is None:
            self._build_engine = self.connect(self.settings.build_timeout)
        return self._build_engine

    def close(self) -> None:
        try:
            if self._build_engine is not None and self._build_engine is not self.engine:
                self._build_engine.close()
        finally:
            self._build_engine = None
            self.engine.close()

    @property
    def store(self) -> Store:
        return self.shared.store

    def planner(self, *, repo: str | None = None, ref: str | None = None) -> planner.Planner:
        """The planner, reading ``repo`` at ``ref`` when given (the daemon pins a revision)."""
        conf = self.settings
        if repo is not None or ref is not None:
            conf = replace(conf, repo=repo or conf.repo, ref=ref or conf.ref)
        conf = replace(conf, docker_socket=conf.docker_socket or docker_client.socket_path())
        return planner.Planner(conf, observation(conf, self.engine, self.store,
                                                 self.shared.indexes), self.shared.manifests)

    def load_test_gate(self) -> loadtest_gate.Gate | None:
        """The load test of built and fetched drivers, unless ``load_test: off``."""
        conf = self.settings
        if conf.load_test is LoadTestPolicy.OFF:
            return None
        from reconciler.loadtest import gate, tester  # noqa: PLC0415 - see the module docstring

        # The gate runs containers and commits images as a build does: the build engine.
        return gate.Gate(self.build_engine(), conf.load_test, tester.Setup(
            conf.state_dir, conf.source, conf.base_image, conf.build_timeout))

    def build_config(self, *, module_name: str = "falco",
                     device_name: str = "falco") -> builder.BuildConfig:
        from reconciler import builder  # noqa: PLC0415 - see the module docstring
        from reconciler.model.netpolicy import UrlPolicy  # noqa: PLC0415 - as above

        conf = self.settings
        gate = self.load_test_gate()
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
        from reconciler import builder  # noqa: PLC0415 - see the module docstring

        with builder.sigterm_as_interrupt():
            return builder.build_all(requests, config or self.build_config(),
                                     self.build_engine(), self.store,
                                     progress=self.progress.build)

    def sign_index(self) -> bool:
        """On a build host with ``index_signing_key``: sign what the store holds again if
        it changed or half its validity passed (``edges.store.signedindex``)."""
        conf = self.settings
        if conf.index_signing_key is None:
            return False
        from reconciler.edges.host import crypto  # noqa: PLC0415 - see the module docstring
        from reconciler.edges.store import signedindex  # noqa: PLC0415 - as above
        from reconciler.httpd.files import StoreFiles  # noqa: PLC0415 - as above

        key = crypto.load_signing_key(conf.index_signing_key)
        signed = signedindex.resign(
            self.store.root, key_id=key.key_id, sign=key.sign,
            signer=host_name(conf),
            entries=StoreFiles(self.store).index(), expiry=conf.index_expiry,
            now=dt.datetime.now(dt.UTC))
        if signed:
            log.info("index.signed", key=key.key_id[:12])
        return signed

    def deployer(self) -> deploy.FalcoDeployer:
        from reconciler.apply import deploy  # noqa: PLC0415 - see the module docstring

        return deploy.FalcoDeployer(self.engine, self.store, settle_seconds=self.settings.settle,
                                    ready_timeout=self.settings.ready_timeout,
                                    stop_timeout=self.settings.stop_timeout,
                                    pull_progress=self.progress.pull)

    def module_loader(self) -> modules.ModuleLoader:
        from reconciler.apply import modules  # noqa: PLC0415 - see the module docstring
        from reconciler.edges.host import kmod  # noqa: PLC0415 - as above

        commands = kmod.ModuleCommands(insmod=self.settings.insmod_command,
                                       rmmod=self.settings.rmmod_command)
        return modules.ModuleLoader(self.engine, self.store, commands,
                                    stop_timeout=self.settings.stop_timeout)

    def request_builds(self, keys: Sequence[Requested], hostname: str) -> RequestOutcome:
        """Ask the upstreams that are build hosts for ``keys`` (``build: never``)."""
        from reconciler.edges.http import requester  # noqa: PLC0415 - see the module docstring

        return requester.request_builds(self.settings.upstreams, keys,
                                            self.settings.state_dir, hostname)

    def executor(self) -> executor.Executor:
        from reconciler.apply import executor, fetcher  # noqa: PLC0415 - see the module docstring

        return executor.Executor(
            self.store, self.build, self.deployer().apply, self.module_loader().apply,
            self.request_builds,
            fetch=fetcher.Fetcher(self.store, self.settings.upstreams,
                                  trusted_keys=self.settings.trusted_keys,
                                  load_test=gate.fetched if (gate := self.load_test_gate())
                                  else None).fetch,
            build_fallback=self.settings.build is BuildPolicy.MISSING)


def observation(settings: Settings, engine: ContainerEngine, store: Store,
                indexes: survey.IndexCache, *,
                connect: survey.Connect | None = None) -> sources.Sources:
    """What a pass reads, one adapter per Protocol; ``connect`` is how upstreams are
    reached (default: ``edges.http.upstream.Client``)."""
    return sources.Sources(
        manifests=GitManifests(settings.repo, settings.ref, settings.path, settings.state_dir,
                               loading.is_manifest_path, loading.MAX_FILE_BYTES),
        host=ReportedHost(settings.host_root, settings.hostname, settings.facts)
        if settings.facts is not None else HostFiles(settings.host_root, settings.hostname),
        store=store, engine=engine,
        upstreams=survey.SurveyIndex(settings.upstreams, indexes, connect),
        apt=AptCache(settings.host_root),
        queue=QueueFile(settings.state_dir), ledger=LedgerFile(settings.state_dir),
        loadtests=quarantine.LoadTestFiles(settings.state_dir, store))


@contextlib.contextmanager
def open_runtime(
    settings: Settings, *, shared: Shared | None = None, progress: Progress | None = None,
    connect: Connect = docker_client.connect,
) -> Iterator[Runtime]:
    """A runtime on the engine at DOCKER_HOST, closed (with its build connection, if one
    was opened) when the block ends."""
    rt = Runtime(settings, connect(ENGINE_TIMEOUT), shared or Shared.for_settings(settings),
                 progress or Progress(), connect)
    try:
        yield rt
    finally:
        rt.close()


# -- the daemon ------------------------------------------------------------------------


EVENTS_TIMEOUT = 10.0  # the event stream's engine connection: only a ping and a stream


class DaemonParts:
    """The daemon, wired: its server, metrics, build-request intake, webhook, file and
    engine watches, alerts, the pass runner and the loop (``daemon.loop.Daemon``), each
    started here and stopped in reverse order by the exit stack ``open_daemon`` owns."""

    def __init__(self, conf: Settings, stack: contextlib.ExitStack, *,
                 connect: Connect = docker_client.connect,
                 progress: Progress | None = None) -> None:
        from reconciler.daemon import loop, notify, passes, triggers  # noqa: PLC0415 - see the module docstring
        from reconciler.daemon.alerts import Alerts  # noqa: PLC0415 - as above
        from reconciler.daemon.building import Building  # noqa: PLC0415 - as above
        from reconciler.daemon.metrics import Metrics  # noqa: PLC0415 - as above
        from reconciler.daemon.wakeup import Wakeup  # noqa: PLC0415 - as above

        self.notifier = notify.Notifier()
        self.wakeup = Wakeup(debounce=conf.debounce)
        shared = Shared.for_settings(conf)
        cleaned = shared.store.clean_partials()
        if cleaned:
            log.info("store.partials_removed", count=cleaned)
        metrics = Metrics(shared.store)
        requests = _build_requests(conf, shared.store, self.wakeup)
        self.server = driver_server(shared.store, conf.listen_address,
                                    intake=requests[1] if requests else None)
        self.server.start()
        stack.callback(self.server.stop)
        host, port = self.server.address
        # An ephemeral listen port is only known now; Falco must be told the real one.
        conf = replace(conf, listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        self.settings = conf
        if conf.metrics_listen:
            metrics.serve(parse_listen(conf.metrics_listen))
            stack.callback(metrics.stop)
        if conf.webhook_listen:
            # On the driver server's loop, on its own address (httpd's Site per listener).
            stack.callback(webhook_server(conf, self.wakeup, self.server).start().stop)
        self.watches = triggers.FileWatches(self.wakeup)
        repo_dir = _git_dir(conf.repo)
        if repo_dir is not None:
            self.watches.git_refs(repo_dir)
        self.watches.store(conf.store)
        self.watches.kernels(conf.host_root)
        self.watches.start()
        stack.callback(self.watches.stop)
        if conf.docker_events:
            events = triggers.DockerEvents(
                self.wakeup, lambda: docker_client.connect(timeout=EVENTS_TIMEOUT))
            events.start()
            stack.callback(events.stop)
        # Each build's steps go to the terminal (if any) and to building.json (status).
        progress = _also_recorded(progress or Progress(), Building(conf.state_dir))
        self.runner = passes.Runner(
            conf, lambda: open_runtime(conf, shared=shared, connect=connect,
                                       progress=progress),
            queue=requests[0] if requests else None)
        self.alerts = Alerts(conf.alerts, host=host_name(conf)).start()
        stack.callback(self.alerts.close)
        self.loop = loop.Daemon(conf, self.runner, wakeup=self.wakeup, notifier=self.notifier,
                                metrics=metrics, alerts=self.alerts)
        stack.callback(self.notifier.close)
        stack.callback(self.notifier.stopping)

    def run(self) -> None:
        """Tell systemd (and the status file) it is up, then run passes until stopped."""
        conf, url = self.settings, self.server.url
        self.loop.started(os.getpid(), url)
        log.info("daemon.started", pid=os.getpid(), serving=url, repo=conf.repo, ref=conf.ref,
                 state_dir=str(conf.state_dir), watching=self.watches.watching)
        self.notifier.ready(f"serving {url}; reconciling {conf.repo}")
        main = threading.main_thread()
        self.notifier.start_watchdog(lambda: main.is_alive() and self.loop.healthy())
        self.loop.run()
        log.info("daemon.stopping")


def _also_recorded(progress: Progress, building: Building) -> Progress:
    """``progress`` whose build events also reach ``building`` (``daemon.building``)."""
    shown = progress.build

    def build(event: builder.BuildEvent) -> None:
        building.event(event)
        if shown is not None:
            shown(event)

    return replace(progress, build=build)


@contextlib.contextmanager
def open_daemon(conf: Settings, *, connect: Connect = docker_client.connect,
                progress: Progress | None = None) -> Iterator[DaemonParts]:
    """The daemon's parts, started; all stopped, in reverse order, when the block ends
    (or when starting one fails: those already started are stopped). ``connect`` opens
    each pass's engine (tests give a recording one); ``progress`` is where each pass's
    builds and pulls are shown live (a terminal)."""
    with contextlib.ExitStack() as stack:
        yield DaemonParts(conf, stack, connect=connect, progress=progress)


def host_name(conf: Settings) -> str:
    """This host's name as plans have it: ``hostname`` if set, else the host root's
    ``etc/hostname`` (then this machine's name)."""
    return conf.hostname or hostfacts.host_name(Path(conf.host_root))


def webhook_secret(conf: Settings) -> bytes:
    """The push webhook's shared secret: ``webhook_secret_file``, else
    ``RECONCILER_WEBHOOK_SECRET`` (settings); empty when neither is given."""
    if conf.webhook_secret_file is None:
        return conf.webhook_secret.strip().encode()
    return secrets.read(conf.webhook_secret_file, "the webhook secret")


def webhook_server(conf: Settings, wakeup: Wakeup,
                   server: DriverServer | None = None) -> WebhookServer:
    from reconciler.daemon.webhook import WebhookServer  # noqa: PLC0415 - see the module docstring

    assert conf.webhook_listen is not None
    return WebhookServer(parse_listen(conf.webhook_listen), webhook_secret(conf), wakeup,
                         server=server)


def _build_requests(conf: Settings, store: Store,
                    wakeup: Wakeup) -> tuple[BuildQueue, Intake] | None:
    """A build host's queue and the server's intake for it (``accept_build_requests``)."""
    from reconciler.edges.state.buildqueue import BuildQueue  # noqa: PLC0415 - see above
    from reconciler.httpd.intake import Intake  # noqa: PLC0415 - see the module docstring
    from reconciler.httpd.ratelimit import RateLimiter  # noqa: PLC0415 - as above
    from reconciler.httpd.server import host_store_arch  # noqa: PLC0415 - as above

    if not conf.accept_build_requests:
        return None
    if conf.build_request_secret_file is None:
        raise ConfigError("accept_build_requests needs build_request_secret_file (the "
                          "shared secret build requests are signed with)")
    secret = secrets.read(conf.build_request_secret_file, "the build request secret")
    queue = BuildQueue(conf.state_dir, conf.build_request_queue)
    intake = Intake(secret, queue, store, host_arch=host_store_arch(),
                    limiter=RateLimiter(conf.build_request_rate), wake=wakeup.wake)
    return queue, intake


def _git_dir(repo: str) -> Path | None:
    from reconciler.daemon import passes  # noqa: PLC0415 - see the module docstring

    try:
        return passes.git_dir(repo)
    except ReconcilerError:
        return None  # not a repository (yet): the first pass says so in the status
