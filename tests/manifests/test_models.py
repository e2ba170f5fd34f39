"""The manifest models: defaults, Python construction, matching, artifact keys, schema."""

from __future__ import annotations

import dataclasses
import fnmatch
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reconciler.errors import UnknownDriverVersion
from reconciler.manifests import models, schema
from reconciler.manifests.models import (
    DriverBuild,
    DriverBuildSpec,
    FalcoSpec,
    Host,
    HostSpec,
    KernelSpec,
    Located,
    ManifestSet,
    Match,
    Metadata,
    Origin,
)
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId


def _host(name: str, hostnames: tuple[str, ...] | None, file: str = "h.yaml",
          document: int = 0) -> Located[Host]:
    host = Host(
        api_version="falco-reconciler/v1", kind="Host", metadata=Metadata(name=name),
        spec=HostSpec(match=Match(hostnames=hostnames), falco=FalcoSpec(version="0.37.1")),
    )
    return Located(host, Origin(file, document, 1))


def _build(name: str, hostnames: tuple[str, ...] | None) -> Located[DriverBuild]:
    spec = DriverBuildSpec(
        match=None if hostnames is None else Match(hostnames=hostnames),
        target="debian", driver_version="2.0.0+driver",
        kernel_release="5.10.0-14-cloud-amd64", kernel_version="1",
    )
    build = DriverBuild(api_version="falco-reconciler/v1", kind="DriverBuild",
                        metadata=Metadata(name=name), spec=spec)
    return Located(build, Origin("b.yaml", 0, 1))


@pytest.mark.parametrize(
    ("hostnames", "hostname", "expected"),
    [
        (None, "anything", True),
        ((), "web-1", False),
        (("web-*",), "web-1", True),
        (("web-*",), "WEB-1", True),
        (("web-*",), "api-1", False),
        (("db-0?", "api-*"), "db-01", True),
        (("db-0?",), "db-010", False),
        (("web-[12]",), "web-2", True),
        (("web-1",), "web-10", False),
    ],
)
def test_match_uses_case_insensitive_fnmatch_and_none_means_every_host(
    hostnames: tuple[str, ...] | None, hostname: str, expected: bool
) -> None:
    assert Match(hostnames=hostnames).matches(hostname) is expected


def test_falco_spec_defaults_follow_the_design() -> None:
    falco = FalcoSpec(version="0.32.2")
    assert falco.image == "docker.io/falcosecurity/falco"
    assert falco.driver is models.DriverMode.KMOD
    assert falco.container_name == "falco"
    assert falco.env == {}
    assert falco.network == "host"
    assert falco.pull is models.PullPolicy.MISSING
    assert falco.adopt is False
    assert falco.driver_version is None


@pytest.mark.parametrize(
    ("version", "override", "expected"),
    [
        ("0.32.2", None, "2.0.0+driver"),
        ("0.38.2", None, "7.2.1+driver"),
        ("0.37.1-debian", None, "7.0.0+driver"),
        ("0.99.0", "12.0.0+driver", "12.0.0+driver"),
        ("0.32.2", "2.0.0+custom", "2.0.0+custom"),
    ],
)
def test_resolved_driver_version_uses_the_table_or_the_override(
    version: str, override: str | None, expected: str
) -> None:
    assert FalcoSpec(version=version, driver_version=override).resolved_driver_version() == (
        expected)


def test_resolved_driver_version_of_an_unknown_release_raises_our_error() -> None:
    with pytest.raises(UnknownDriverVersion, match="driverVersion"):
        FalcoSpec(version="0.99.0").resolved_driver_version()


def test_models_accept_python_names_and_yaml_aliases_alike() -> None:
    # Docker's container names have two characters at least: "f" is not one.
    by_name = FalcoSpec(version="0.37.1", container_name="f1", driver_version="7.0.0+driver")
    by_alias = FalcoSpec.model_validate(
        {"version": "0.37.1", "containerName": "f1", "driverVersion": "7.0.0+driver"})
    assert by_name == by_alias


def test_models_are_frozen_and_forbid_unknown_keys() -> None:
    falco = FalcoSpec(version="0.37.1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        falco.version = "0.38.0"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="drver"):
        FalcoSpec.model_validate({"version": "0.37.1", "drver": "kmod"})


@pytest.mark.parametrize("value", [1, "1", 26])
def test_kernel_version_takes_a_bare_integer_as_driverkit_does(value: object) -> None:
    spec = KernelSpec.model_validate(
        {"target": "debian", "kernelRelease": "5.10.0-14-amd64", "kernelVersion": value})
    assert spec.kernel_version == str(value)


@pytest.mark.parametrize("value", [True, 1.5, None, ""])
def test_kernel_version_rejects_what_is_not_a_build_number(value: object) -> None:
    with pytest.raises(ValidationError):
        KernelSpec.model_validate(
            {"target": "debian", "kernelRelease": "5.10.0-14-amd64", "kernelVersion": value})


@pytest.mark.parametrize(("given", "kept"), [("amd64", "amd64"), ("x86_64", "amd64"),
                                            ("arm64", "arm64"), ("aarch64", "arm64")])
def test_kernel_spec_architecture_accepts_both_spellings(given: str, kept: str) -> None:
    spec = KernelSpec(target="debian", kernel_release="6.1.0-13-amd64", kernel_version="1",
                      architecture=given)
    assert spec.architecture == kept
    assert spec.kernel_id() == KernelId(
        "debian", "6.1.0-13-amd64", "1", "x86_64" if kept == "amd64" else "aarch64")


def test_kernel_spec_rejects_an_unknown_architecture() -> None:
    with pytest.raises(ValidationError, match="amd64 or arm64"):
        KernelSpec(target="debian", kernel_release="6.1.0-13-amd64", kernel_version="1",
                   architecture="s390x")


def test_artifact_keys_name_one_file_per_output_in_the_store_layout() -> None:
    spec = DriverBuildSpec(
        target="debian", driver_version="2.0.0+driver", kernel_release="5.10.0-14-cloud-amd64",
        kernel_version="1", outputs=(DriverKind.KMOD, DriverKind.EBPF, DriverKind.KMOD),
    )
    keys = spec.artifact_keys()
    assert [k.relpath for k in keys] == [
        "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko",
        "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.o",
    ]
    assert all(isinstance(k, ArtifactKey) for k in keys)


def test_artifact_keys_use_the_store_arch_for_arm64() -> None:
    spec = DriverBuildSpec(target="debian", driver_version="7.0.0+driver",
                           kernel_release="6.1.0-18-cloud-arm64", architecture="arm64")
    (key,) = spec.artifact_keys()
    assert key.relpath == "7.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.ko"


def test_driver_build_defaults_are_driverkits() -> None:
    spec = DriverBuildSpec(target="debian", driver_version="2.0.0+driver",
                           kernel_release="5.10.0-14-cloud-amd64")
    assert spec.kernel_version == "1"
    assert spec.architecture == "amd64"
    assert spec.outputs == (DriverKind.KMOD,)
    assert spec.match is None


def test_host_for_takes_the_first_match_in_order() -> None:
    hosts = (
        _host("web", ("web-*",), "10.yaml"),
        _host("web-canary", ("web-1",), "20.yaml"),
        _host("default", None, "99.yaml"),
    )
    manifests = ManifestSet(hosts=hosts, builds=())
    assert manifests.host_for("web-1") is hosts[0]
    assert manifests.host_for("db-1") is hosts[2]
    assert ManifestSet(hosts=hosts[:2]).host_for("db-1") is None


def test_builds_for_keeps_unmatched_builds_and_those_that_fit() -> None:
    everyone, builders, others = _build("a", None), _build("b", ("build-*",)), _build(
        "c", ("web-*",))
    manifests = ManifestSet(hosts=(), builds=(everyone, builders, others))
    assert manifests.builds_for("build-1") == (everyone, builders)
    assert manifests.builds_for("db-1") == (everyone,)


def test_schema_is_one_of_host_driver_build_rollout_and_driverkit_config() -> None:
    document = schema.json_schema()
    json.dumps(document)  # JSON-ready
    refs = sorted(item["$ref"] for item in document["oneOf"])
    assert refs == ["#/$defs/DriverBuild", "#/$defs/DriverkitConfig", "#/$defs/Host",
                    "#/$defs/Rollout"]
    falco = document["$defs"]["FalcoSpec"]
    assert {"driverVersion", "containerName", "version", "env"} <= set(falco["properties"])
    assert falco["additionalProperties"] is False
    assert falco["required"] == ["version"]
    build = document["$defs"]["DriverBuildSpec"]
    assert {"kernelRelease", "kernelVersion", "kernelUrls", "outputs"} <= set(build["properties"])
    assert set(document["$defs"]["DriverMode"]["enum"]) == {
        "kmod", "ebpf", "modern_ebpf", "kmod-preloaded", "none"}


def _spec(**changes: object) -> dict[str, object]:
    spec: dict[str, object] = {"target": "debian", "driverVersion": "2.0.0+driver",
                               "kernelRelease": "5.10.0-14-cloud-amd64"}
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    "target",
    ["debian", "ubuntu-generic", "ubuntu-aws", "ubuntu-gke", "ubuntu-azure", "amazonlinux2",
     "amazonlinux2023", "centos", "rocky", "almalinux", "flatcar", "bottlerocket", "talos",
     "photon", "ol", "arch", "fedora", "opensuse", "sles", "alinux"],
)
def test_driver_build_accepts_driverkits_targets(target: str) -> None:
    extra = {"kernelVersion": "1", "kernelConfigData": "bm8tZGF0YQ=="}
    DriverBuildSpec.model_validate(_spec(target=target, **extra), by_name=False)


@pytest.mark.parametrize("target", ["debain", "ubuntu-", "cos", "windows", "Debian"])
def test_driver_build_rejects_targets_driverkit_has_no_builder_for(target: str) -> None:
    with pytest.raises(ValidationError, match="is not a driverkit target"):
        DriverBuildSpec.model_validate(_spec(target=target, kernelVersion="1"))


@pytest.mark.parametrize(
    "version", ["2.0.0+driver", "7.2.1+driver", "1.0.0-alpha2+driver", "master", "dev",
                "0de226085cc4603c45ebb6883ca4cacae0bd25b2", "0de2260", "v0.1.0"],
)
def test_driver_version_takes_a_semver_a_commit_or_master(version: str) -> None:
    assert DriverBuildSpec.model_validate(_spec(driverVersion=version)).driver_version == version


@pytest.mark.parametrize("version", ["latest", "2.0.0 driver", "0de22", "", "2..0"])
def test_driver_version_rejects_anything_else(version: str) -> None:
    with pytest.raises(ValidationError):
        DriverBuildSpec.model_validate(_spec(driverVersion=version))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "ubuntu-generic"}, "kernelVersion is required when target is ubuntu"),
        ({"target": "vanilla"}, "kernelConfigData is required when target is vanilla"),
        ({"target": "flatcar"}, "kernelConfigData is required when target is flatcar"),
        ({"kernelConfigData": "not base64!"}, "must be base64-encoded"),
        ({"kernelRelease": "5.10 amd64"}, "kernelRelease"),
        ({"kernelRelease": "5.10.0-14-ämd64"}, "kernelRelease"),
        ({"architecture": "x86_64"}, "architecture"),
        ({"outputs": []}, "outputs"),
    ],
)
def test_driverkits_cross_field_rules_apply_to_driver_builds(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        DriverBuildSpec.model_validate(_spec(**changes))


_glob_chars = st.sampled_from(list("ab-.1*"))


@settings(max_examples=500, deadline=None)
@given(name=st.text(st.sampled_from(list("ab-.1")), max_size=8),
       pattern=st.text(_glob_chars, max_size=8) | st.text(st.sampled_from(list("ab?[]*!")),
                                                          max_size=6))
def test_glob_match_agrees_with_fnmatchcase(name: str, pattern: str) -> None:
    assert models.glob_match(name, pattern) is fnmatch.fnmatchcase(name, pattern)
