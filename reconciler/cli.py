"""The ``reconciler`` command: argv -> one command module under ``reconciler.commands``.

Each command module has ``register(subparsers)`` (setting ``handler`` on its parser) and
declares its process policy in ``ONE_SHOT``: a one-shot command (``plan``, ``apply``...)
runs without the cyclic garbage collector and leaves without the interpreter's teardown,
while a long-running one (``run``, ``serve``) collects less often and exits as usual.
Every command gets its soft descriptor limit raised to the hard one. This is the only
place that policy is applied (no library module switches the collector or the limits).

Only ``ReconcilerError`` is caught here: it becomes one sentence on stderr and exit 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import resource
import sys
from collections.abc import Sequence
from types import ModuleType

from reconciler import __version__, logs
from reconciler.commands import helptext
from reconciler.errors import ReconcilerError

COMMANDS = ("plan", "apply", "validate", "facts", "schema", "build", "prebuild", "serve", "run",
            "status", "suspend", "resume", "reconcile", "load-test", "rollout")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"reconciler.commands.{name.replace('-', '_')}")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with just the command ``only``: each command module imports
    what it needs (docker, the build engine, the server), and a plan should not pay for
    the imports of every other command."""
    top = argparse.ArgumentParser(
        prog="reconciler",
        description="Build, serve and run the right Falco driver on this host, from git.",
        epilog="Run `reconciler COMMAND --help` for a command's flags and examples.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_flags(top, default=True)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        _module(name).register(sub)
    for name, command in sub.choices.items():
        # Help for a person (commands.helptext), and the global flags accepted after the
        # command too (`reconciler plan --log-level debug`).
        has_settings = any(a.dest == "config" for a in command._actions)
        command.description, command.epilog = helptext.for_command(
            name, command.description, settings=has_settings)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        _global_flags(command, default=False)
    return top


def _global_flags(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """--log-level and --log-format; on a command's parser they default to nothing, so a
    value given before the command is not overwritten."""
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        default="info" if default else argparse.SUPPRESS,
                        help="least severe log events shown (default: info)")
    parser.add_argument("--log-format", choices=["auto", "console", "json"],
                        default="auto" if default else argparse.SUPPRESS,
                        help="auto (default): readable on a terminal, JSON lines otherwise")


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (after the top-level options), if any."""
    words = iter(argv)
    for word in words:
        if word in ("--log-level", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def one_shot(argv: Sequence[str]) -> bool:
    """Whether the command in ``argv`` declares itself one-shot (unknown: no)."""
    name = _command_in(argv)
    return name in COMMANDS and bool(getattr(_module(name), "ONE_SHOT", False))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(_command_in(argv)).parse_args(argv)
    logs.configure(level=args.log_level, fmt=args.log_format)
    try:
        code: int = args.handler(args)
    except ReconcilerError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reconciler: interrupted", file=sys.stderr)
        return 130
    return code


# A long-running command's young-generation threshold (CPython's default: 700).
LONG_RUNNING_GC_THRESHOLD = 10_000


def process_policy(*, one_shot: bool) -> None:
    """The process's policy, applied once at its edge (``entry``; benchmarks that run a
    command's work in-process apply the same).

    Every command may serve (``run``, ``serve``) or open many files at once, and the
    server sizes its connections by the soft descriptor limit: it is raised to the hard
    one (systemd's ``LimitNOFILE=``); where that is refused, the command runs with what
    it has.

    Reading a large repository makes hundreds of thousands of objects that stay (the
    manifests, and in the daemon its caches), and the collector rescanning them was a
    third of a plan. A one-shot command runs without it; the daemon keeps collecting
    cycles but less often (a cold pass on the benchmark fleet: 2.6 s at the default
    thresholds, 1.5 s at these).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if one_shot:
        gc.disable()
    else:
        gc.set_threshold(LONG_RUNNING_GC_THRESHOLD, 10, 10)


def entry() -> None:
    """The console script, with the process policy (``process_policy``) of its command.

    A one-shot command also leaves without the interpreter's teardown: freeing a large
    plan's objects one by one at exit took a quarter of a second, and all our own cleanup
    (files, containers, sockets) has run by the time ``main`` returns. The daemon and the
    server exit as usual.
    """
    argv = sys.argv[1:]
    short = one_shot(argv)
    process_policy(one_shot=short)
    if not short:
        sys.exit(main(argv))
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
