"""falco-reconciler: declarative, GitOps-style management of Falco kernel drivers.

The packages read as the pipeline, lower layers never importing higher ones::

    manifests (git) -> facts (host) -> desired -> observed -> plan -> apply

    model/      pure values and rules: artifacts, versions, naming, host facts, the
                container spec, build-request rules, the URL policy, signed indexes
    manifests/  a commit's files -> a validated ManifestSet, or every located problem
    desired/    pure: manifests + facts -> what this host must have
    observe/    what is there now, read through the Protocols of ``observe.sources`` (the
                root builds them; fakes beside): the store, the engine, the host, the
                upstreams, as values; the store's verdicts decided here
    plan/       the pure diff, retention, renderings, saved plans; the planner of a pass
    apply/      the executor, fetches, Falco's safe (re)start, the module, recovery
    builder/    driver builds in Docker, step by step (shell steps in builder/scripts/)
    loadtest/   a driver proven in a VM of its kernel before a host gets it
    httpd/      the server: pure responder, connection state machine, epoll loop;
                the driver repository and the push webhook on that one core
    daemon/     ``reconciler run``: triggers, the loop, passes, status, alerts
    commands/   one module per CLI command
    edges/      every outside system, each the only importer of its library, errors
                translated once: git/, host/, http/ (ONE client: http/client.py),
                store/, state/, docker/, vm/; atomic.py, clock.py, secrets.py
    errors.py   the one exception tree
    settings.py flags, config file and environment -> one Settings value
    logs.py     structured logs: JSON under systemd, one line on a terminal
    runtime.py  the one composition root: store, server, engine, daemon
    testing.py  the fakes of our seams and the log capture, for tests
    cli.py      argv -> command, and the process policy each command declares
"""

__version__ = "0.1.0"
