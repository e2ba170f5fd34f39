"""``reconciler run``: the daemon. Serve the store, follow the repository, reconcile.

Its settings, the daemon's own included, come from ``reconciler.settings`` as for every
command: flags, ``RECONCILER_<NAME>`` variables (systemd's ``EnvironmentFile``), the
config file. Its parts are wired in the composition root (``runtime.open_daemon``); this
module keeps the arguments, the state-dir lock and the signals.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from reconciler import logs, runtime, settings
from reconciler.commands import daemonview
from reconciler.daemon import lock

log = logs.get("reconciler.run")


ONE_SHOT = False  # the daemon: a normal exit, with the collector on


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the daemon: follow the repository and reconcile",
                       description=__doc__)
    settings.add_flags(p, *settings.APPLYING)
    settings.add_flags(p, *settings.DEPLOYING, "poll_interval", "debounce", "backoff_max",
                       "metrics_listen", "webhook_listen", "webhook_secret_file", "verify_gpg_home",
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


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    conf.state_dir.mkdir(parents=True, exist_ok=True)
    conf.store.mkdir(parents=True, exist_ok=True)
    with lock.StateDirLock(conf.state_dir), daemonview.display() as progress, \
            runtime.open_daemon(conf, progress=progress) as daemon, _signals(daemon):
        daemon.run()
    log.info("daemon.stopped")
    return 0


@contextmanager
def _signals(daemon: runtime.DaemonParts) -> Iterator[None]:
    """SIGTERM and SIGINT stop the daemon after its pass; SIGHUP asks for a pass now. A
    second SIGINT (Ctrl-C again, on a terminal) cancels what the pass still does: its
    builds stop and clean up as they do for SIGTERM during a build."""
    interrupts = 0

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupts
        log.info("daemon.signal", signal=signal.Signals(signum).name)
        if signum == signal.SIGINT:
            interrupts += 1
            if interrupts > 1:
                raise KeyboardInterrupt
        daemon.loop.request_stop()

    def hup(_signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.signal", signal="SIGHUP")
        daemon.wakeup.wake("sighup")

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
        signal.SIGINT: signal.signal(signal.SIGINT, stop),
        signal.SIGHUP: signal.signal(signal.SIGHUP, hup),
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
