"""``reconciler apply``: plan, show, ask (unless ``--yes``), apply; one outcome per change."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler import builder, settings
from reconciler.edges import kmod
from reconciler.edges.docker import client as dockerapi
from reconciler.edges.store import Store
from reconciler.errors import ConfigError
from reconciler.reconcile import deploy, executor, planner, render, savedplan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="plan, show, ask, and apply the changes",
                       description=__doc__)
    settings.add_flags(p, "repo", "ref", "path", "host_root", "store", "state_dir", "listen",
                       "hostname", "privileged", "source", "base_image", "jobs", "build_timeout",
                       "insmod_command", "rmmod_command")
    p.add_argument("planfile", nargs="?", type=Path, metavar="PLANFILE",
                   help="a plan saved with `reconciler plan --out`: apply exactly it, "
                   "without asking, or refuse if anything moved since")
    p.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    settings.add_flags(p, "adopt", "settle", "stop_timeout")
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
    # Committing a builder image can take minutes: the client's timeout covers a build.
    with contextlib.closing(dockerapi.connect(timeout=conf.build_timeout)) as client:
        return _apply(args, conf, client, saved)


def _apply(
    args: argparse.Namespace, conf: settings.Settings, client: Any, saved: dict[str, Any] | None
) -> int:
    planned = planner.make_plan(conf, client, adopt=conf.adopt, one_shot=True)
    if saved is not None:
        savedplan.check(saved, planned)
    sys.stdout.write(render.as_text(planned.plan))
    if planned.plan.empty:
        return 0
    if saved is None and not args.yes and not _confirm():
        print("Apply cancelled.")
        return 1
    store = Store(conf.store)
    config = builder.BuildConfig(
        state_dir=conf.state_dir, store=conf.store, source=conf.source,
        base_image=conf.base_image, jobs=conf.build_jobs, timeout=conf.build_timeout,
    )
    deployer = deploy.FalcoDeployer(client, store,
                                   settle_seconds=conf.settle,
                                   stop_timeout=conf.stop_timeout)

    def build(requests: Sequence[builder.BuildRequest]) -> Sequence[builder.BuildOutcome]:
        # SIGTERM (systemd, CI) cancels builds like Ctrl-C: containers and temp files go.
        with builder.sigterm_as_interrupt():
            return builder.build_all(requests, config, client,
                                   progress=builder.terminal_progress())

    modules = deploy.ModuleLoader(client, store, kmod.ModuleCommands(
        insmod=conf.insmod_command, rmmod=conf.rmmod_command))
    run_ = executor.Executor(store, build, deployer.apply, modules.apply)
    outcomes = run_.run(planned.plan, planned.desired, adopt=conf.adopt)
    print()
    for outcome in outcomes:
        mark = {"ok": "✓", "failed": "✗", "skipped": "·"}[outcome.result.value]
        print(f"  {mark} {outcome.change.op.value} {outcome.change.name}: {outcome.message}")
    failed = sum(1 for o in outcomes if o.result is executor.Result.FAILED)
    print(f"\nApplied {len(outcomes) - failed} of {len(outcomes)} changes"
          f" at revision {planned.plan.revision[:12]}.")
    return 1 if failed else 0
