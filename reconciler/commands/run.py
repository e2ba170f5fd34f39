"""``reconciler run``: the daemon. Serve the store, follow the repository, reconcile.

Its settings, the daemon's own included, come from ``reconciler.settings`` as for every
command: flags, ``RECONCILER_<NAME>`` variables (systemd's ``EnvironmentFile``), the
config file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

from reconciler import logs, runtime, settings
from reconciler.daemon import lock, loop, notify, passes, triggers
from reconciler.daemon.alerts import Alerts
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.wakeup import Wakeup
from reconciler.daemon.webhook import WebhookServer
from reconciler.edges.docker import client as docker_client
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.httpd.intake import Intake
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.httpd.server import DriverServer, host_store_arch

log = logs.get("reconciler.run")


ONE_SHOT = False  # the daemon: a normal exit, with the collector on


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the daemon: follow the repository and reconcile",
                       description=__doc__)
    settings.add_flags(p, "repo", "ref", "path", "host_root", "store", "state_dir", "listen",
                       "hostname", "privileged", "source", "base_image", "jobs", "build_timeout",
                       "insmod_command", "rmmod_command")
    settings.add_flags(p, "adopt", "settle", "ready_timeout", "stop_timeout", "retention",
                       "poll_interval", "debounce", "backoff_max", "metrics_listen",
                       "webhook_listen", "webhook_secret_file", "verify_gpg_home",
                       "verify_ssh_allowed_signers", "docker_events", "alerts", config=False)
    # A fleet's: where missing drivers come from, and build requests (docs/fleet.md).
    settings.add_flags(p, "upstreams", "trusted_keys", "index_signing_key", "index_expiry",
                       "kernel_url_allow", "build", "falco_upstreams", "accept_build_requests",
                       "build_request_secret_file", "build_request_rate", "build_request_queue",
                       config=False)
    settings.add_flags(p, *settings.PROMETHEUS, config=False)  # rollout gates (docs/rollout.md)
    p.add_argument("--no-docker-events", dest="docker_events", action="store_const",
                   const="false", help="do not follow Docker events (drift is then seen at "
                   "the next poll)")
    p.set_defaults(handler=run)


def _secret(path: Path | None) -> bytes:
    if path is None:
        return os.environ.get("RECONCILER_WEBHOOK_SECRET", "").strip().encode()
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the webhook secret {path}: {exc.strerror}") from exc


def _build_requests(conf: settings.Settings, store: Store,
                    wakeup: Wakeup) -> tuple[BuildQueue, Intake] | None:
    """A build host's queue and the server's intake for it (``accept_build_requests``)."""
    if not conf.accept_build_requests:
        return None
    if conf.build_request_secret_file is None:
        raise ConfigError("accept_build_requests needs build_request_secret_file (the "
                          "shared secret build requests are signed with)")
    try:
        secret = conf.build_request_secret_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the build request secret "
                          f"{conf.build_request_secret_file}: {exc.strerror}") from exc
    if not secret:
        raise ConfigError(f"the build request secret {conf.build_request_secret_file} is empty")
    queue = BuildQueue(conf.state_dir, conf.build_request_queue)
    intake = Intake(secret, queue, store, host_arch=host_store_arch(),
                    limiter=RateLimiter(conf.build_request_rate), wake=wakeup.wake)
    return queue, intake


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    conf.state_dir.mkdir(parents=True, exist_ok=True)
    conf.store.mkdir(parents=True, exist_ok=True)
    with lock.StateDirLock(conf.state_dir):
        return _serve(args, conf)


def _serve(args: argparse.Namespace, conf: settings.Settings) -> int:
    notifier = notify.Notifier()
    wakeup = Wakeup(debounce=conf.debounce)
    shared = runtime.Shared.for_settings(conf)
    store = shared.store
    cleaned = store.clean_partials()
    if cleaned:
        log.info("store.partials_removed", count=cleaned)
    metrics = Metrics(store)
    requests = _build_requests(conf, store, wakeup)
    stack = contextlib.ExitStack()
    with stack:
        server = DriverServer(store, conf.listen_address,
                              intake=requests[1] if requests else None)
        server.start()
        stack.callback(server.stop)
        host, port = server.address
        # An ephemeral --listen port is only known now; Falco must be told the real one.
        conf = replace(conf, listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if conf.metrics_listen:
            metrics.serve(settings.parse_listen(conf.metrics_listen))
            stack.callback(metrics.stop)
        if conf.webhook_listen:
            hook = WebhookServer(settings.parse_listen(conf.webhook_listen),
                                 _secret(conf.webhook_secret_file), wakeup).start()
            stack.callback(hook.stop)
        watches = triggers.FileWatches(wakeup)
        repo_dir = _git_dir(conf.repo)
        if repo_dir is not None:
            watches.git_refs(repo_dir)
        watches.store(conf.store)
        watches.kernels(conf.host_root)
        watches.start()
        stack.callback(watches.stop)
        if conf.docker_events:
            events = triggers.DockerEvents(wakeup, lambda: docker_client.connect(timeout=10))
            events.start()
            stack.callback(events.stop)
        final = conf  # the real listen address, for Falco's DRIVERS_REPO
        reconciler = passes.Reconciler(
            final, lambda: runtime.open_runtime(final, timeout=final.build_timeout,
                                                shared=shared),
            queue=requests[0] if requests else None)
        alerts = Alerts(conf.alerts, host=conf.hostname or socket.gethostname()).start()
        stack.callback(alerts.close)
        daemon = loop.Daemon(final, reconciler, wakeup=wakeup, notifier=notifier,
                             metrics=metrics, alerts=alerts)
        stack.callback(notifier.close)
        stack.callback(notifier.stopping)
        _signals(daemon, wakeup, stack)
        daemon.started(os.getpid(), server.url)
        log.info("daemon.started", pid=os.getpid(), serving=server.url, repo=conf.repo,
                 ref=conf.ref, state_dir=str(conf.state_dir), watching=watches.watching)
        notifier.ready(f"serving {server.url}; reconciling {conf.repo}")
        main = threading.main_thread()
        notifier.start_watchdog(lambda: main.is_alive() and daemon.healthy())
        daemon.run()
        log.info("daemon.stopping")
    log.info("daemon.stopped")
    return 0


def _git_dir(repo: str) -> Path | None:
    try:
        return passes.git_dir(repo)
    except ReconcilerError:
        return None  # not a repository (yet): the first pass says so in the status


def _signals(daemon: loop.Daemon, wakeup: Wakeup, stack: contextlib.ExitStack) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.signal", signal=signal.Signals(signum).name)
        daemon.request_stop()

    def hup(_signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.signal", signal="SIGHUP")
        wakeup.wake("sighup")

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
        signal.SIGINT: signal.signal(signal.SIGINT, stop),
        signal.SIGHUP: signal.signal(signal.SIGHUP, hup),
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    stack.callback(restore)
