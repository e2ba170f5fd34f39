"""falco-reconciler: declarative, GitOps-style management of Falco kernel drivers.

The packages read as the pipeline, lower layers never importing higher ones::

    manifests (git) -> facts (host) -> desired -> observed -> plan -> apply

    model/      pure values: artifacts, versions, naming rules, host facts, container spec,
                the build-request rules (asking, queueing), URLs shown without credentials,
                JSON from outside bounded in depth
    manifests/  a commit's files -> a validated ManifestSet, or every located problem
    desired/    pure: manifests + facts -> what this host must have
    observe/    what is there now: the store, the engine, the upstreams, as values
    plan/       the pure diff, retention, renderings, saved plans, the planner of one pass
    apply/      the executor, fetches, Falco's safe (re)start, the preloaded module, recovery
    builder/    driver builds in Docker, step by step
    httpd/      the HTTP server: the driver repository and the push webhook on one loop
    daemon/     ``reconciler run``: triggers, the loop, status
    commands/   one module per CLI command
    edges/      every outside system, grouped by the system it speaks to (git, host, http,
                store, state, docker), each the only importer of its library and
                translating its errors once (http: ONE client, edges/http/client.py)
    runtime.py  the one composition root: store, server, engine, daemon; every command's
    cli.py      argv -> command, and the process policy each command declares
"""

__version__ = "0.1.0"
