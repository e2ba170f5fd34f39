"""manifests.schema, checked by a real JSON Schema validator (jsonschema, as editors' YAML
language servers apply it): what validate accepts, the schema accepts; every property
explains itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.manifests import schema

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = jsonschema.Draft202012Validator(schema.json_schema())


def _documents(*folders: Path) -> list[tuple[str, Any]]:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.y*ml")):
            found += [(str(path), doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema.json_schema())


@pytest.mark.parametrize(("where", "document"), _documents(
    ROOT / "manifests", ROOT / "docs" / "examples" / "driverkit"))
def test_the_shipped_manifests_and_driverkit_configs_are_valid(where: str,
                                                                document: Any) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == [], where


@pytest.mark.parametrize("document", [
    {"apiVersion": "falco-reconciler/v1", "kind": "Host", "metadata": {"name": "w"},
     "spec": {"falco": {"version": "0.40.0", "drvier": "kmod"}}},       # a typo'd key
    {"apiVersion": "falco-reconciler/v1", "kind": "Hots", "metadata": {"name": "w"},
     "spec": {}},                                                       # an unknown kind
    {"target": "debian", "kernelrelease": "6.1.0-28-cloud-amd64", "outptu": {}},
    {"kind": "DriverBuild", "target": "debian"},                        # a mixture
])
def test_mistakes_are_refused(document: Any) -> None:
    assert list(VALIDATOR.iter_errors(document))


def test_every_property_has_a_readable_title_and_a_description() -> None:
    defs = schema.json_schema()["$defs"]
    for name, definition in defs.items():
        for key, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key}"
            assert " " in prop["title"] or prop["title"].lower() == key.lower(), (name, key)
    falco = defs["FalcoSpec"]["properties"]
    assert falco["driverVersion"]["title"] == "Driver version"
    assert defs["DriverBuildSpec"]["properties"]["kernelUrls"]["title"] == "Kernel URLs"
