"""``reconciler reconcile``: ask the running daemon for a pass now (as SIGHUP does)."""

from __future__ import annotations

import argparse

from reconciler import settings
from reconciler.daemon import control
from reconciler.errors import ConfigError

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reconcile", help="ask the running daemon for a pass now",
                       description=__doc__)
    settings.add_flags(p, "state_dir")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    pid = control.poke(control.existing(conf.state_dir))
    if pid is None:
        raise ConfigError(f"no daemon runs on state dir {conf.state_dir}")
    suspended = control.read(conf.state_dir).suspended
    note = " (it is suspended: run `reconciler resume` first)" if suspended else ""
    print(f"asked daemon pid {pid} to reconcile now{note}")
    return 0
