"""The JSON Schema of a manifest document, derived from the pydantic models.

A document is a Host, a DriverBuild or a Rollout (told apart by ``kind``), or a plain
driverkit config (no ``kind``: driverkit's own lower-case keys). Keys are spelt as in YAML
(camelCase); every property has a readable title and a description (``DESCRIBED``), so an
editor (yaml-language-server) explains each key as it completes it. ``reconciler
validate`` is still the authority: the schema cannot express the cross-document rules
(unique names, which driver versions were released).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.manifests import driverkit, models, rollout

DIALECT = "https://json-schema.org/draft/2020-12/schema"

Document = Annotated[models.Host | models.DriverBuild | rollout.Rollout,
                     Field(discriminator="kind")]

_MATCH = "which hosts: host name globs (fnmatch, e.g. web-*); omitted, every host"
_TARGET = "the distribution as Falco's loader names it: debian, ubuntu-generic, centos..."
_RELEASE = "the kernel release, as `uname -r` prints it (5.10.0-14-cloud-amd64)"
_VERSION = "the kernel version: the number after '#' in `uname -v` (1, or 26~22.04.1)"
_ARCH = "amd64 or arm64 (x86_64 or aarch64 in store paths)"
_URLS = "URLs of the kernel header packages to build against, as driverkit takes them"
_CONFIG = "the kernel's .config, base64-encoded (vanilla, minikube and flatcar need it)"
_SIGNING = "sign the module with a key of this build host"

# (definition, property) -> description. Every property of the schema has one (a test
# checks): this is what an editor shows beside a key.
DESCRIBED: dict[tuple[str, str], str] = {
    **{(kind, "apiVersion"): "always falco-reconciler/v1"
       for kind in ("Host", "DriverBuild", "Rollout")},
    ("Host", "kind"): "Host: which Falco runs on which hosts",
    ("DriverBuild", "kind"): "DriverBuild: an explicit build request, as a driverkit config",
    **{(kind, "metadata"): "the document's name"
       for kind in ("Host", "DriverBuild", "Rollout")},
    ("Rollout", "kind"): "Rollout: in which waves a new revision reaches the fleet "
    "(at most one per repository)",
    ("Rollout", "spec"): "the waves, and what a failing revision does",
    ("Host", "spec"): "what the matching hosts run",
    ("DriverBuild", "spec"): "what to build, and on which hosts",
    ("Metadata", "name"): "1 to 253 characters, no whitespace; unique among its kind",
    ("Match", "hostnames"): "host name globs (fnmatch: web-*, db-[0-9]); omitted, every host",
    ("HostSpec", "match"): _MATCH + "; the first Host (by file path) that matches wins",
    ("HostSpec", "falco"): "the Falco container: its version, driver and settings",
    ("HostSpec", "kernels"): "drivers to have ready besides the running kernel's: installed "
    "(every installed kernel, the default), running (only it), or a list of kernels",
    ("HostSpec", "signing"): _SIGNING + " (every kernel's module of this Host)",
    ("FalcoSpec", "version"): "the Falco release (image tag), e.g. '0.40.0': it decides the "
    "driver version, the loader generation and the driver's file name",
    ("FalcoSpec", "image"): "the Falco image, without a tag (docker.io/falcosecurity/falco)",
    ("FalcoSpec", "driverVersion"): "override the driver version derived from version "
    "(a falcosecurity/libs driver release such as 8.0.0+driver)",
    ("FalcoSpec", "driver"): "kmod, ebpf (legacy probe), modern_ebpf (no driver to build), "
    "kmod-preloaded (inserted on the host first) or none",
    ("FalcoSpec", "containerName"): "the Falco container's name (default falco)",
    ("FalcoSpec", "env"): "extra environment for the Falco container",
    ("FalcoSpec", "network"): "host (default), bridge or a Docker network name",
    ("FalcoSpec", "pull"): "missing (default): pull an absent image; always: pull every pass "
    "and replace Falco when the tag moved",
    ("FalcoSpec", "adopt"): "replace a same-named container this tool did not create",
    ("FalcoSpec", "driverLoaderImage"): "Falco 0.40+: the image run before Falco to load "
    "its driver (default falcosecurity/falco-driver-loader, Falco's tag)",
    ("FalcoSpec", "webserverPort"): "where Falco's web server answers /healthz (default "
    "8765); null when it has none",
    ("KernelSpec", "target"): _TARGET,
    ("KernelSpec", "kernelRelease"): _RELEASE,
    ("KernelSpec", "kernelVersion"): _VERSION,
    ("KernelSpec", "architecture"): _ARCH,
    ("SigningSpec", "key"): "the signing key to use (as this build host's settings name it)",
    ("SigningSpec", "certificate"): "the certificate of that key",
    ("DriverBuildSpec", "match"): _MATCH,
    ("DriverBuildSpec", "target"): _TARGET,
    ("DriverBuildSpec", "driverVersion"): "a falcosecurity/libs driver release "
    "(8.0.0+driver), a commit, or master",
    ("DriverBuildSpec", "kernelRelease"): _RELEASE,
    ("DriverBuildSpec", "newestKernel"): "instead of kernelRelease: the newest kernel of a "
    "series whose headers apt offers, e.g. 6.1.0-*-cloud-amd64",
    ("DriverBuildSpec", "unameRelease"): "the kernel's real `uname -r` when kernelRelease "
    "is the name the loader asks for",
    ("DriverBuildSpec", "kernelVersion"): _VERSION,
    ("DriverBuildSpec", "architecture"): _ARCH,
    ("DriverBuildSpec", "outputs"): "what to build: kmod, ebpf or both (default [kmod])",
    ("DriverBuildSpec", "kernelUrls"): _URLS,
    ("DriverBuildSpec", "kernelConfigData"): _CONFIG,
    ("DriverBuildSpec", "signing"): _SIGNING,
    ("RolloutSpec", "onFailure"): "when a gate fails: hold (the revision goes no further) "
    "or rollback (hosts that run it also go back to the last revision that passed)",
    ("RolloutSpec", "waves"): "the waves, in order",
    ("Wave", "name"): "the wave's name, unique in the rollout (shown in holds, metrics and "
    "`rollout status`)",
    ("Wave", "hostnames"): "fnmatch globs on the host name (case ignored); omitted: every "
    "host. A host is in the first wave that selects it; hosts no wave selects are in the "
    "last wave",
    ("Wave", "percent"): "a deterministic share (0-100) of the hosts the globs match, the "
    "same on every host and every pass; shares are cumulative across waves (a host in the "
    "first 5% is also in the first 50%)",
    ("Wave", "soak"): "how long this wave's gate must hold continuously before the wave gets "
    "a revision (30s, 30m, 2h)",
    ("Wave", "gate"): "an extra PromQL query that must return a non-empty result; $revision "
    "and $wave (the previous wave) are replaced",
    ("Wave", "windows"): "maintenance windows: when the wave may move to a new revision",
    ("Window", "kind"): "allow: waves move only inside an allow window (when any is given); "
    "deny: never inside one (deny wins)",
    ("Window", "schedule"): "when the window opens: five cron fields on the clock of "
    "timeZone (minute hour day-of-month month day-of-week) or @daily...",
    ("Window", "timeZone"): "the IANA time zone the schedule is read in (Europe/Berlin, "
    "America/New_York); UTC unless given",
    ("Window", "duration"): "how long it stays open: 30m, 8h, 2d (at most 7d)",
    ("DriverkitConfig", "target"): _TARGET,
    ("DriverkitConfig", "driverversion"): "the driver version (8.0.0+driver)",
    ("DriverkitConfig", "kernelrelease"): _RELEASE,
    ("DriverkitConfig", "kernelversion"): _VERSION,
    ("DriverkitConfig", "architecture"): _ARCH,
    ("DriverkitConfig", "kernelurls"): _URLS,
    ("DriverkitConfig", "kernelconfigdata"): _CONFIG,
    ("DriverkitConfig", "output"): "what to build: module and/or probe, each with the path "
    "driverkit would write it to",
}
_OTHER_DRIVERKIT_KEYS = "a driverkit setting; read and ignored (the build is ours)"


def _title(name: str) -> str:
    """driverVersion -> Driver version; kernelUrls -> Kernel URLs."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower().split()
    text = " ".join({"urls": "URLs", "api": "API"}.get(w, w) for w in words)
    return text[:1].upper() + text[1:]


def _driverkit_config() -> dict[str, Any]:
    output = {"type": "object", "additionalProperties": False, "properties": {
        key: {"type": "string", "title": key.capitalize(),
              "description": f"the {key} path driverkit would write"}
        for key in driverkit.OUTPUT_KEYS}}
    properties: dict[str, Any] = {
        key: {"type": "string"} for key in sorted(driverkit.KEYS - {"output", "kernelurls"})}
    properties["kernelversion"] = {"type": ["string", "integer"]}
    properties["kernelurls"] = {"type": "array", "items": {"type": "string"}}
    properties["output"] = output
    for key, prop in properties.items():
        prop["title"] = key
        prop["description"] = DESCRIBED.get(("DriverkitConfig", key), _OTHER_DRIVERKIT_KEYS)
    return {"type": "object", "title": "Plain driverkit config",
            "description": "A driverkit config, as driverkit reads it: built for the "
            "hosts that read it, as a DriverBuild without match",
            "additionalProperties": False, "not": {"required": ["kind"]},
            "properties": properties, "anyOf": [{"required": [k]} for k in
                                                sorted(driverkit.MARKERS)]}


def json_schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    schema: dict[str, Any] = TypeAdapter(Document).json_schema(
        by_alias=True, mode="validation"
    )
    defs = schema["$defs"]
    for name, definition in defs.items():
        for key, prop in definition.get("properties", {}).items():
            prop["title"] = _title(key)
            prop["description"] = DESCRIBED[(name, key)]
    defs["DriverkitConfig"] = _driverkit_config()
    # ``kind`` tells a Host, a DriverBuild and a Rollout apart, and a driverkit config has
    # none: exactly one fits. (OpenAPI's ``discriminator`` would send a driverkit config nowhere.)
    schema.pop("discriminator")
    schema["oneOf"].append({"$ref": "#/$defs/DriverkitConfig"})
    return {
        "$schema": DIALECT,
        "title": "falco-reconciler manifest",
        "description": f"A {models.API_VERSION} document: a Host, a DriverBuild or a "
        "Rollout, or a plain driverkit config.",
        **schema,
    }
