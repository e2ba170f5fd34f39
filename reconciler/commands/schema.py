"""``reconciler schema``: print the JSON Schema of the manifests (Host | DriverBuild)."""

from __future__ import annotations

import argparse
import json

from reconciler.manifests import schema

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the manifests",
                       description=__doc__)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(schema.json_schema(), indent=2, sort_keys=False))
    return 0
