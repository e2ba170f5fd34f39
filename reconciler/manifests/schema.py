"""The JSON Schema of a manifest document, derived from the pydantic models.

One schema: ``oneOf`` Host | DriverBuild | Rollout, told apart by ``kind``, with the shared parts in
``$defs``, keys spelt as in YAML (camelCase). Editors (yaml-language-server) and CI linters
can check manifests with it; ``reconciler validate`` is still the authority, as the schema
cannot express the cross-document rules (unique names, known driver versions). Plain
driverkit configs are accepted by the loader but are not described here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.manifests import models, rollout

DIALECT = "https://json-schema.org/draft/2020-12/schema"

Document = Annotated[models.Host | models.DriverBuild | rollout.Rollout,
                     Field(discriminator="kind")]


def json_schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    schema: dict[str, Any] = TypeAdapter(Document).json_schema(
        by_alias=True, mode="validation"
    )
    return {
        "$schema": DIALECT,
        "title": "falco-reconciler manifest",
        "description": f"A {models.API_VERSION} document: a Host, a DriverBuild or a Rollout.",
        **schema,
    }
