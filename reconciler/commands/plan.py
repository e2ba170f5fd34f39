"""``reconciler plan``: show what would change, change nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reconciler import runtime, settings
from reconciler.commands import notes, terminal
from reconciler.daemon import rollout
from reconciler.daemon import state as daemonstate
from reconciler.plan import render
from reconciler.plan import saved as savedplan

EXIT_CHANGES = 2
ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="show the changes the manifests ask for; change nothing",
                       description=__doc__)
    settings.add_flags(p, "repo", "ref", "path", "host_root", "store", "state_dir", "listen",
                       "hostname", "facts", "privileged")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 0 with no changes, 2 with changes, 1 on error")
    settings.add_flags(p, "adopt", "retention", config=False)
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="save the plan; `reconciler apply FILE` applies exactly it")
    # Where missing drivers come from (docs/fleet.md).
    settings.add_flags(p, "upstreams", "trusted_keys", "build", "falco_upstreams", config=False)
    settings.add_flags(p, "docker_socket", config=False)
    settings.add_flags(p, *settings.PROMETHEUS, config=False)  # rollout gates
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    # Planning a host this is not (`--hostname web-1` on a build host, or its --facts):
    # this machine's store and retention are not that host's, so they are not reviewed.
    acting = args.hostname is not None or conf.facts is not None
    with runtime.open_runtime(conf) as rt:
        head = rt.planner().read_inputs().revision
        # What a daemon with this state dir would plan: its rollout wave may hold the head.
        status = daemonstate.read(conf.state_dir)
        choice = rollout.choose(rt, conf.repo, head,
                                applied=status.applied_revision if status else None)
        planned = rt.planner(ref=choice.revision if choice else head).plan(
            adopt=conf.adopt, review=not acting)
    notes.warn_uncommitted(conf.repo, conf.path, planned.inputs.revision, "planned")
    if acting:
        notes.facts_used(planned.inputs.facts, conf.facts)
    if args.out is not None:
        savedplan.save(args.out, planned, conf)
    held = choice.decision.held if choice else ""
    out = render.as_json(planned.plan, held) if args.json else render.as_text(
        planned.plan, colour=terminal.colour(sys.stdout))
    if held and not args.json:
        out = f"{held}\n{out}"
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if args.detailed_exitcode and not planned.plan.empty:
        return EXIT_CHANGES
    return 0
