"""What ``--help`` says of each command: plain sentences and examples for a person.

Module docstrings are design notes for developers (reStructuredText, internal module
names); the help a user reads is written here, once, and ``cli`` attaches it to each
command's parser. A command without an entry keeps its docstring, cleaned of markup.
"""

from __future__ import annotations

import re

_CONFIG = """settings:
  Each flag may also come from a RECONCILER_<NAME> variable (named beside each flag) or
  the config file /etc/falco-reconciler/config.yaml (same names in snake_case); flags win.
"""

DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "plan": (
        "Show what would change on this host: the drivers to fetch, build or delete and the "
        "Falco container to create or replace, each with its reason. Changes nothing.",
        """examples:
  reconciler plan                                   this host, the repository in .
  reconciler plan --json --detailed-exitcode        for scripts: exit 2 when there are changes
  reconciler plan --hostname web-1 --facts web-1.json   another host, from its `facts --json`
  reconciler plan --out web.plan && reconciler apply web.plan
""",
    ),
    "apply": (
        "Plan, show the plan, ask, then apply it: fetch or build missing drivers, publish "
        "them, (re)start Falco only once its driver is served, delete what nobody wants. "
        "One outcome per change: a failure does not stop the others, and a Falco that "
        "fails to start is put back as it was.",
        """examples:
  reconciler apply                  ask before applying
  reconciler apply --yes            apply without asking
  reconciler apply web.plan         apply exactly a plan saved with `plan --out`
""",
    ),
    "validate": (
        "Check the manifests at one revision and print every problem as file:line: "
        "message. Exit 1 when there is any.",
        """examples:
  reconciler validate                 the manifests of HEAD, from anywhere in the repository
  reconciler validate --worktree      the files as they are now (pre-commit hooks, editors)
  reconciler validate --repo https://git.example.com/fleet.git --ref main --path manifests
""",
    ),
    "facts": (
        "Show this host's facts as Falco's loaders read them, and the driver file each "
        "Falco version will ask for (for the running kernel and every installed one).",
        """examples:
  reconciler facts                          every known Falco release line
  reconciler facts --falco-version 0.40.0
  reconciler facts --json > web-1.json      to plan this host elsewhere (plan --facts)
""",
    ),
    "schema": (
        "Print the JSON Schema of the manifest kinds (Host, DriverBuild, plain driverkit "
        "configs), for editors and CI.",
        """examples:
  reconciler schema > manifests.schema.json
  then, first line of a manifest: # yaml-language-server: $schema=manifests.schema.json
""",
    ),
    "build": (
        "Build one driver now, driverkit style: from a driverkit config (-c) or driverkit's "
        "flags. The artifacts are verified and published into the store, and copied to "
        "--output-module / --output-probe when given.",
        """examples:
  reconciler build -c debian_6.1.0-28-cloud-amd64_1.yaml
  reconciler build --target debian --driverversion 8.0.0+driver \\
      --kernelrelease 6.1.0-28-cloud-amd64 --kernelversion 1 --output-module falco.ko \\
      --source deb:falcosecurity-scap-dkms/trixie
""",
    ),
    "prebuild": (
        "Build (or fetch) every driver a host root will need, for each kernel installed "
        "in it, and nothing else: for pipelines that bake machine images.",
        """examples:
  reconciler prebuild --host-root /mnt/golden-image --hostname web-1
""",
    ),
    "serve": (
        "Serve the driver store over HTTP, laid out exactly as Falco's loaders download "
        "it, until Ctrl-C or SIGTERM.",
        """examples:
  reconciler serve --store /var/lib/falco-reconciler/store --listen 0.0.0.0:8000
""",
    ),
    "run": (
        "The daemon: serve the driver store, follow the repository (poll, git push, "
        "webhook, SIGHUP), and reconcile this host on every trigger. Run it under "
        "systemd; on a terminal it shows what each pass does.",
        """examples:
  reconciler run --config /etc/falco-reconciler/config.yaml
  reconciler run --repo https://git.example.com/fleet.git --poll-interval 30
""",
    ),
    "status": (
        "Show what the daemon of a state dir applied last, what it is doing now and what "
        "failed, and whether each kernel's driver is ready.",
        """examples:
  reconciler status
  reconciler status --json | jq .appliedRevision
""",
    ),
    "suspend": (
        "Pause reconciliation (remembered across restarts); the driver server keeps "
        "serving.",
        "examples:\n  reconciler suspend && reconciler resume\n",
    ),
    "resume": (
        "End a suspension; the daemon reconciles at once.",
        "examples:\n  reconciler resume\n",
    ),
    "rollout": (
        "Staged rollouts (a Rollout document in the manifests). `rollout status` draws the "
        "head revision's waves as the fleet's Prometheus sees them: each wave's hosts with "
        "the revision they run and their health, the gate about the wave before it, and how "
        "long until the wave moves if its gates stay open. Changes nothing.",
        """examples:
  reconciler rollout status --repo https://git.example/fleet.git \\
      --prometheus-url https://prometheus.example:9090
  reconciler rollout status --json
""",
    ),
    "load-test": (
        "Prove a driver in a VM of its kernel: boot the kernel of a linux-image package in "
        "QEMU (no disk, no network), insert the module or load the probe through the "
        "verifier, capture a few seconds of syscalls with scap-open built from the driver's "
        "own libs source, find this run's marker mkdirs, remove the module and scan the "
        "kernel log. Exit 1 when the driver fails.",
        """examples:
  cd /var/lib/falco-reconciler/store
  reconciler load-test 8.0.0+driver/x86_64/falco_debian_6.1.0-28-cloud-amd64_1.ko \\
      --kernel-package linux-image-6.1.0-28-cloud-amd64_6.1.119-1_amd64.deb
  reconciler load-test falco.o --kernel-package linux-image.deb --json
""",
    ),
    "reconcile": (
        "Ask the running daemon for a pass now (as SIGHUP does).",
        "examples:\n  reconciler reconcile\n",
    ),
}

_LITERAL = re.compile(r"``([^`]+)``")


def plain(doc: str | None) -> str:
    """A docstring without reStructuredText literals (``x`` -> x)."""
    return _LITERAL.sub(r"\1", doc or "").strip()


def for_command(name: str, doc: str | None, *, settings: bool) -> tuple[str, str]:
    """(description, epilog) of command ``name``'s help."""
    description, examples = DESCRIPTIONS.get(name, (plain(doc), ""))
    return description, examples + (_CONFIG if settings else "")
