"""The ``reconciler`` command: one subcommand module each under ``reconciler.commands``.

Only ``ReconcilerError`` is caught here: it becomes one sentence on stderr and exit 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from reconciler import __version__, logs
from reconciler.errors import ReconcilerError

# Each module has register(subparsers) that sets `handler` on its parser.
COMMANDS = ("plan", "apply", "validate", "facts", "schema", "build", "serve", "run", "status",
            "suspend", "resume", "reconcile")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="reconciler",
        description="Build, serve and run the right Falco driver on this host, from git.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    top.add_argument("--log-format", default="auto", choices=["auto", "console", "json"])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"reconciler.commands.{name}").register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
