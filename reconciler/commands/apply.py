"""``reconciler apply``: plan, show, ask (unless ``--yes``), apply; one outcome per change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reconciler import runtime, settings
from reconciler.apply import executor
from reconciler.commands import progress, terminal
from reconciler.errors import ConfigError
from reconciler.plan import render
from reconciler.plan import saved as savedplan

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="plan, show, ask, and apply the changes",
                       description=__doc__)
    settings.add_flags(p, *settings.APPLYING)
    p.add_argument("planfile", nargs="?", type=Path, metavar="PLANFILE",
                   help="a plan saved with `reconciler plan --out`: apply exactly it, "
                   "without asking, or refuse if anything moved since")
    p.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    settings.add_flags(p, *settings.DEPLOYING, config=False)
    # Where missing drivers come from (docs/fleet.md).
    settings.add_flags(p, "upstreams", "trusted_keys", "index_signing_key", "index_expiry",
                       "kernel_url_allow", "build", "falco_upstreams", config=False)
    settings.add_flags(p, "docker_socket", config=False)
    p.set_defaults(handler=run)


def _confirm() -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("not on a terminal: pass --yes to apply without asking")
    answer = input("Apply these changes? Only 'yes' is accepted: ")
    return answer.strip() == "yes"


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    saved = savedplan.load(args.planfile) if args.planfile else None
    if saved is not None:
        conf = savedplan.settings_for(saved, conf)
    with progress.display() as shown, runtime.open_runtime(
            conf, progress=shown) as rt:
        return _apply(args, rt, saved)


def _apply(args: argparse.Namespace, rt: runtime.Runtime, saved: dict[str, Any] | None) -> int:
    conf = rt.settings
    planned = rt.planner().plan(adopt=conf.adopt)
    if saved is not None:
        savedplan.check(saved, planned)
    sys.stdout.write(render.as_text(planned.plan, colour=terminal.colour(sys.stdout)))
    if planned.plan.empty:
        rt.sign_index()
        planned.remember()
        return 0
    if saved is None and not args.yes and not _confirm():
        print("Apply cancelled.")
        return 1
    outcomes = rt.executor().run(planned.plan, planned.desired, adopt=conf.adopt)
    rt.sign_index()  # a build host vouches for what it now serves
    planned.remember()
    print()
    for outcome in outcomes:
        mark = {"ok": "✓", "failed": "✗", "skipped": "·"}[outcome.result.value]
        print(f"  {mark} {outcome.change.op.value} {outcome.change.name}: {outcome.message}")
    failed = sum(1 for o in outcomes if o.result is executor.OutcomeResult.FAILED)
    print(f"\nApplied {len(outcomes) - failed} of {len(outcomes)} changes"
          f" at revision {planned.plan.revision[:12]}.")
    return 1 if failed else 0
