"""identity: the driver-source step reads what a tree declares and refuses a tree that is
not the requested driver version, before anything compiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import identity, sources, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.errors import StepFailed
from reconciler.model.artifacts import DriverKind
from reconciler.model.versions import DriverIdentity

KMOD, EBPF = DriverKind.KMOD, DriverKind.EBPF
CONFIG = """#pragma once
/* taken from driver/API_VERSION */
#define PPM_API_CURRENT_VERSION_MAJOR 8
#define PPM_API_CURRENT_VERSION_MINOR 0
#define PPM_API_CURRENT_VERSION_PATCH 3
#define PPM_SCHEMA_CURRENT_VERSION_MAJOR 3
#define PPM_SCHEMA_CURRENT_VERSION_MINOR 5
#define PPM_SCHEMA_CURRENT_VERSION_PATCH 0
#define DRIVER_NAME "scap"
"""


def dkms(root: Path, config: str = CONFIG, probe: bool = True) -> sources.Source:
    root.mkdir(parents=True)
    (root / "driver_config.h").write_text(config)
    (root / "Makefile").write_text("obj-m += scap.o\n")
    if probe:
        (root / "bpf").mkdir()
        (root / "bpf/Makefile").write_text("all:\n")
    return sources.Source(sources.TreeKind.DKMS, root)


def libs(root: Path, api: str, schema: str, probe: bool) -> sources.Source:
    (root / "driver").mkdir(parents=True)
    (root / "driver/API_VERSION").write_text(api + "\n")
    (root / "driver/SCHEMA_VERSION").write_text(schema + "\n")
    if probe:
        (root / "driver/bpf").mkdir()
        (root / "driver/bpf/Makefile").write_text("all:\n")
    return sources.Source(sources.TreeKind.LIBS, root)


def test_a_dkms_tree_declares_its_identity_in_driver_config_macros(tmp_path: Path) -> None:
    assert identity.declared(dkms(tmp_path / "t")) == DriverIdentity.parse("8.0.3", "3.5.0")
    assert identity.from_driver_config('#define DRIVER_NAME "scap"\n') is None


def test_a_libs_tree_declares_it_in_api_and_schema_version_files(tmp_path: Path) -> None:
    tree = libs(tmp_path, "10.1.0", "4.5.1", probe=False)
    assert identity.declared(tree) == DriverIdentity.parse("10.1.0", "4.5.1")


def test_a_fitting_tree_passes_and_the_log_says_why(tmp_path: Path) -> None:
    log = steps.BuildLog(tmp_path / "log")
    found = identity.check(dkms(tmp_path / "t"), "deb:x/trixie", "8.0.0+driver", [KMOD, EBPF],
                           log)
    assert found == DriverIdentity.parse("8.0.3", "3.5.0")
    assert ("### driver identity: the source has API 8.0.3 / schema 3.5.0, which 8.0.0+driver "
            "accepts (it requires API 8.0.3 / schema 3.5.0)") in log.path.read_text()


def test_a_version_not_in_the_table_builds_and_the_log_says_it_was_not_checked(
    tmp_path: Path,
) -> None:
    log = steps.BuildLog(tmp_path / "log")
    identity.check(dkms(tmp_path / "t"), "deb:x", "0.1.1-dkms", [KMOD], log)
    assert ("### driver identity not checked: 0.1.1-dkms is not a driver version we know the "
            "API and schema of (the source has API 8.0.3 / schema 3.5.0)") in log.path.read_text()


def test_a_tree_that_does_not_fit_fails_naming_both_and_the_hint(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as failed:
        identity.check(dkms(tmp_path / "t"), "deb:x", "9.1.0+driver", [KMOD],
                       steps.BuildLog(tmp_path / "log"), suggest=lambda: "try elsewhere")
    assert failed.value.reason == (
        "driver source 'deb:x' does not fit: driver version 9.1.0+driver requires API 8.0.4 / "
        "schema 4.1.0 (the same majors, minor.patch at least these), but the driver has "
        "API 8.0.3 / schema 3.5.0; try elsewhere")


def test_a_known_version_from_a_tree_without_identity_is_refused(tmp_path: Path) -> None:
    tree = dkms(tmp_path / "t", config='#define DRIVER_NAME "scap"\n')
    with pytest.raises(StepFailed, match=r"^driver source '/t' declares no API/schema "
                       r"version, so it cannot be shown to be 8\.0\.0\+driver \(which requires "
                       r"API 8\.0\.3 / schema 3\.5\.0\)$"):
        identity.check(tree, "/t", "8.0.0+driver", [KMOD], steps.BuildLog(tmp_path / "log"))


def test_a_probe_from_a_tree_without_bpf_is_refused(tmp_path: Path) -> None:
    tree = libs(tmp_path, "10.1.0", "4.5.1", probe=False)
    log = steps.BuildLog(tmp_path / "log")
    assert identity.check(tree, "t.tgz", "10.2.0+driver", [KMOD], log)
    with pytest.raises(StepFailed, match=r"^driver source 't.tgz' has no eBPF probe"):
        identity.check(tree, "t.tgz", "10.2.0+driver", [KMOD, EBPF], log)


@pytest.mark.parametrize(("spec", "argument", "suite"), [
    ("deb:falcosecurity-scap-dkms", "falcosecurity-scap-dkms", None),
    ("deb:falcosecurity-scap-dkms/trixie", "falcosecurity-scap-dkms/trixie", "trixie"),
    ("deb:falcosecurity-scap-dkms=0.20.0-3", "falcosecurity-scap-dkms=0.20.0-3", None),
    ("deb:falcosecurity-scap-dkms=0.23.2-6/sid", "falcosecurity-scap-dkms=0.23.2-6", "sid"),
])
def test_deb_specs_are_apts_own_syntax(spec: str, argument: str, suite: str | None) -> None:
    package = sources.DebPackage.parse(spec)
    assert (package.apt_argument, package.suite) == (argument, suite)


def test_a_malformed_deb_spec_is_refused() -> None:
    with pytest.raises(StepFailed, match=r"is not deb:<package>\[=<version>\]\[/<suite>\]"):
        sources.DebPackage.parse("deb:Bad Name/")


@pytest.mark.docker
@pytest.mark.parametrize("layout", ["deb822", "one-line"])
def test_a_missing_suite_is_added_with_the_images_mirror_and_keyring(
    docker_client: Any, builder_image: str, layout: str,
) -> None:
    """add_suite copies the URI and keyring of the image's first entry, in either apt
    sources format, and leaves a suite the image already has alone."""
    legacy = (
        "rm /etc/apt/sources.list.d/*; echo 'deb [signed-by=/usr/share/keyrings/"
        "debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' "
        ">/etc/apt/sources.list; "
    ) if layout == "one-line" else ""
    script = steps.script("apt-suite.sh") + (
        f"\n{legacy}echo \"bookworm: $(add_suite bookworm)\"; echo \"sid: $(add_suite sid)\"; "
        "cat /etc/apt/sources.list.d/reconciler-sid.sources"
    )
    done = jobs.Jobs(Docker(docker_client)).run(builder_image, script)
    assert done.ok, done.output
    lines = done.output.splitlines()
    assert "bookworm: " in lines
    assert "sid: added" in lines
    assert lines[-6:] == [
        "Types: deb", "URIs: http://deb.debian.org/debian", "Suites: sid", "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg", "Check-Valid-Until: no"]
