"""The ``reconciler`` command: one subcommand module each under ``reconciler.commands``.

Only ``ReconcilerError`` is caught here: it becomes one sentence on stderr and exit 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from reconciler import __version__, logs
from reconciler.errors import ReconcilerError

# Each module has register(subparsers) that sets `handler` on its parser.
COMMANDS = ("plan", "apply", "validate", "facts", "schema", "build", "serve", "run", "status",
            "suspend", "resume", "reconcile")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with just the command ``only``: each command module imports
    what it needs (docker, the build engine, the server), and a plan should not pay for
    the imports of every other command."""
    top = argparse.ArgumentParser(
        prog="reconciler",
        description="Build, serve and run the right Falco driver on this host, from git.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    top.add_argument("--log-format", default="auto", choices=["auto", "console", "json"])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"reconciler.commands.{name}").register(sub)
    return top


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (after the top-level options), if any."""
    words = iter(argv)
    for word in words:
        if word in ("--log-level", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


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
    """The console script. A one-shot command leaves without the interpreter's teardown:
    freeing every object of a large plan one by one took a quarter of a second, and all
    our own cleanup (files, containers, sockets) has run by the time ``main`` returns.
    The daemon exits normally."""
    argv = sys.argv[1:]
    code = main(argv)
    if _command_in(argv) == "run":
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
