"""``reconciler resume``: end a suspension; the daemon reconciles at once."""

from __future__ import annotations

import argparse

from reconciler import settings
from reconciler.daemon import control

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("resume", help="resume reconciliation after `reconciler suspend`",
                       description=__doc__)
    settings.add_flags(p, "state_dir")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    control.set_suspended(conf.state_dir, False)
    pid = control.poke(conf.state_dir)
    told = f"daemon pid {pid} reconciles now" if pid else "no daemon running"
    print(f"reconciliation resumed ({told})")
    return 0
