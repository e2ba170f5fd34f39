"""``reconciler prebuild``: build every driver a host root will need, and nothing else.

For pipelines that bake images: point ``--host-root`` at a mounted golden image (or any
host root) and the drivers for each kernel installed in it are built, verified and
published to the store before a machine boots from it. The host root's Host manifest
(by ``--hostname``, else its ``etc/hostname``) and its DriverBuilds decide what is wanted,
as for ``plan``; a root that runs no kernel (no ``proc/``) counts as booting its newest.
Drivers an upstream has are fetched instead, as ``apply`` would (``upstreams``, ``build``
from the config file or variables). No container is touched and nothing is deleted; exit 1
if any build or fetch failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from reconciler import runtime, settings
from reconciler.apply import executor
from reconciler.commands import progress, terminal
from reconciler.plan import render
from reconciler.plan.diff import ChangeKind, Op

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prebuild", help="build the drivers a host root (an image) will need",
                       description=__doc__)
    settings.add_flags(p, "repo", "ref", "path", "host_root", "store", "state_dir",
                       "hostname", "source", "base_image", "jobs", "build_timeout")
    # Where missing drivers come from (docs/fleet.md).
    settings.add_flags(p, "upstreams", "trusted_keys", "kernel_url_allow", "build", config=False)
    settings.add_flags(p, "docker_socket", config=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    with progress.display() as shown, runtime.open_runtime(
            conf, progress=shown) as rt:
        planned = rt.planner().plan()
        builds = tuple(c for c in planned.plan.changes
                       if c.kind is ChangeKind.DRIVER and c.op in (Op.BUILD, Op.FETCH))
        only = dataclasses.replace(planned.plan, changes=builds)
        sys.stdout.write(render.as_text(only, colour=terminal.colour(sys.stdout)))
        wanted = len(planned.desired.artifacts)
        if not builds:
            print(f"Nothing to build: the {wanted} drivers this host root needs are in the store.")
            return 0
        outcomes = rt.executor().run(only, planned.desired)
    print()
    for outcome in outcomes:
        mark = {"ok": "✓", "failed": "✗", "skipped": "·"}[outcome.result.value]
        print(f"  {mark} {outcome.change.op.value} {outcome.change.name}: {outcome.message}")
    failed = sum(1 for o in outcomes if o.result is executor.OutcomeResult.FAILED)
    verb = "Built or fetched" if any(c.op is Op.FETCH for c in builds) else "Built"
    print(f"\n{verb} {len(outcomes) - failed} of {len(outcomes)} drivers; "
          f"{wanted - len(outcomes)} were in the store already.")
    return 1 if failed else 0
