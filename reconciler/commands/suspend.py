"""``reconciler suspend``: pause reconciliation (persisted); the server keeps serving."""

from __future__ import annotations

import argparse

from reconciler import settings
from reconciler.daemon import control

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("suspend", help="pause reconciliation; the driver server keeps serving",
                       description=__doc__)
    settings.add_flags(p, "state_dir")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    wanted = control.set_suspended(conf.state_dir, True)
    pid = control.poke(conf.state_dir)
    told = f"daemon pid {pid} told" if pid else "no daemon running; the next one starts suspended"
    print(f"reconciliation suspended since {wanted.since} ({told})")
    return 0
