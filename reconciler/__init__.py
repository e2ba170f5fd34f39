"""falco-reconciler: declarative, GitOps-style management of Falco kernel drivers.

The packages read as the pipeline, lower layers never importing higher ones::

    manifests (git) -> facts (host) -> desired -> observed -> plan -> apply

    model/      pure values: artifacts, versions, naming rules, host facts, container spec
    manifests/  a commit's files -> a validated ManifestSet, or every located problem
    edges/      every outside system (git, the host, the store, Docker, HTTP), each the only
                importer of its library and translating its errors once
    reconcile/  desired, observed, the plan (a pure diff), rendering, saved plans, the
                planner that reads the edges, the executor and the deploy logic above it
    builder/    driver builds in Docker, step by step
    httpd/      the driver server
    daemon/     ``reconciler run``: triggers, the loop, status
    commands/   one module per CLI command
    runtime.py  the one composition root, used by plan, apply, build and the daemon
    cli.py      argv -> command, and the process policy each command declares
"""

__version__ = "0.1.0"
