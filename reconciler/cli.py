"""The ``reconciler`` command: argv -> one command module under ``reconciler.commands``.

Each command module has ``register(subparsers)`` (setting ``handler`` on its parser) and
declares its process policy in ``ONE_SHOT``: a one-shot command (``plan``, ``apply``...)
runs without the cyclic garbage collector and leaves without the interpreter's teardown,
while a long-running one (``run``, ``serve``) keeps both. This is the only place that
policy is applied.

Only ``ReconcilerError`` is caught here: it becomes one sentence on stderr and exit 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
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


def entry() -> None:
    """The console script, with the command's process policy.

    A one-shot command makes tens of thousands of objects that are never garbage (a
    large plan's manifests), and the collector rescanning them cost a plan of the
    benchmark fleet about 0.7 s; freeing them one by one at exit took a quarter of a
    second, and all our own cleanup (files, containers, sockets) has run by the time
    ``main`` returns. The daemon and the server run with both as usual.
    """
    argv = sys.argv[1:]
    if not one_shot(argv):
        sys.exit(main(argv))
    gc.disable()
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
