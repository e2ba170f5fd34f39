"""Real builds that must be the driver version they are published as: Debian's trixie
package and the falcosecurity/libs release trees (module and probe, offline), and the
refusals: a tree without a probe asked for one, and bookworm's 2022 snapshot asked to be
2.0.0+driver.

The libs trees are test data kept beside the repository (``../shared/fixtures``, as CI
clones it); without them these tests skip, except under CI=true, where that is a broken
CI machine. What the files carry is read with the builder image's own ``modinfo`` and
``readelf``, not only with our ELF reader.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import runner
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.store import local as store_mod
from reconciler.errors import BuildError
from reconciler.httpd.files import StoreFiles
from reconciler.model import driverfile
from reconciler.model.artifacts import DriverKind
from reconciler.model.container import BindMount
from tests.builder.helpers import DKMS_SOURCE, request

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KMOD, EBPF = DriverKind.KMOD, DriverKind.EBPF
FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
TRIXIE = "deb:falcosecurity-scap-dkms/trixie"


def libs_tree(version: str) -> str:
    """The libs release tarball of ``version`` (GitHub's archive layout)."""
    path = FIXTURES / f"falcosecurity-libs-{version}.tar.gz"
    if not path.is_file():
        reason = f"{path} is missing: the libs release trees are cloned beside the repo in CI"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(path)


def modinfo(docker_client: Any, image: str, module: Path) -> dict[str, str]:
    fields = ("vermagic", "name", "api_version", "schema_version")
    script = "; ".join(f"echo {f}=$(modinfo -F {f} /m/{module.name})" for f in fields)
    done = jobs.Jobs(Docker(docker_client)).run(
        image, script, mounts=[BindMount(str(module.parent), "/m", read_only=True)])
    assert done.ok, done.output
    return dict(line.split("=", 1) for line in done.output.strip().splitlines())


def probe_sections(docker_client: Any, image: str, probe: Path) -> tuple[str, str]:
    """The probe's api_version and schema_version sections as readelf dumps them,
    unpacked as libscap does."""
    done = jobs.Jobs(Docker(docker_client)).run(
        image, f"readelf -x api_version -x schema_version /p/{probe.name}",
        mounts=[BindMount(str(probe.parent), "/p", read_only=True)])
    assert done.ok, done.output
    words = re.findall(r"^\s+0x0+ ([0-9a-f]{8}) ([0-9a-f]{8})", done.output, re.MULTILINE)
    assert len(words) == 2, done.output
    api, schema = (
        str(driverfile.unpack_version(struct.unpack("<Q", bytes.fromhex(lo + hi))[0]))
        for lo, hi in words
    )
    return api, schema


def build(docker_client: Any, config: runner.BuildConfig, release: str, version: str,
          *kinds: DriverKind) -> runner.BuildOutcome:
    (outcome,) = runner.build_all([request(release, version, *kinds)], config,
                                  Docker(docker_client), store_mod.Store(config.store))
    return outcome


def visible(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.usefixtures("no_leftover_containers")
@pytest.mark.parametrize(("source", "version"), [
    (TRIXIE, "8.0.0+driver"),
    ("libs", "8.0.0+driver"),
], ids=["trixie-package", "libs-tree"])
def test_an_8_0_0_module_and_probe_carry_its_api_and_schema(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    source: str, version: str,
) -> None:
    """Trixie's package (the suite added to the builder's apt sources) and the libs
    release tree (configured offline) both give 8.0.0+driver's API 8.0.3 / schema 3.5.0,
    in the module's modinfo and in the probe's sections, and /index.json shows it."""
    config = make_config(source=libs_tree(version) if source == "libs" else source)
    outcome = build(docker_client, config, kernel_release, version, KMOD, EBPF)
    assert outcome.error is None, str(outcome.error)
    module, probe = (a.path for a in outcome.artifacts)
    info = modinfo(docker_client, builder_image, module)
    assert info["vermagic"].startswith(kernel_release + " ")
    assert (info["name"], info["api_version"], info["schema_version"]) == (
        "falco", "8.0.3", "3.5.0")
    assert probe_sections(docker_client, builder_image, probe) == ("8.0.3", "3.5.0")
    assert [str(a.identity) for a in outcome.artifacts] == [
        "API 8.0.3 / schema 3.5.0", "API 8.0.3 / schema 3.5.0"]
    index = StoreFiles(store_mod.Store(config.store)).index()
    assert [(e["kind"], e["apiVersion"], e["schemaVersion"]) for e in index] == [
        ("kmod", "8.0.3", "3.5.0"), ("ebpf", "8.0.3", "3.5.0")]
    log = outcome.log_path.read_text() if outcome.log_path else ""
    assert ("driver identity: the source has API 8.0.3 / schema 3.5.0, which 8.0.0+driver "
            "accepts (it requires API 8.0.3 / schema 3.5.0)") in log


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_10_2_0_module_builds_from_the_libs_tree_and_its_probe_is_refused(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    count_containers: Any,
) -> None:
    """10.2.0 has no legacy probe: a module-only request builds (API 10.1.0 / schema
    4.5.1); asking for the probe fails at driver-source, before any compile."""
    tree = libs_tree("10.2.0+driver")
    config = make_config(source=tree)
    with count_containers() as created:
        refused = build(docker_client, config, kernel_release, "10.2.0+driver", KMOD, EBPF)
    assert isinstance(refused.error, BuildError)
    assert refused.error.step == "driver-source"
    assert (f"failed at step driver-source: driver source {tree!r} has no eBPF probe (no bpf/ "
            "folder with a Makefile; falcosecurity/libs dropped the legacy probe in driver "
            "10.0), so it cannot build the ebpf artifact of 10.2.0+driver: ask for kmod only, "
            "or use modern_ebpf") in str(refused.error)
    assert "compile" not in created.steps()
    assert visible(config.store) == []

    outcome = build(docker_client, config, kernel_release, "10.2.0+driver", KMOD)
    assert outcome.error is None, str(outcome.error)
    info = modinfo(docker_client, builder_image, outcome.artifacts[0].path)
    assert (info["api_version"], info["schema_version"]) == ("10.1.0", "4.5.1")
    assert info["vermagic"].startswith(kernel_release + " ")


@pytest.mark.usefixtures("no_leftover_containers")
def test_bookworms_snapshot_is_not_2_0_0_and_nothing_is_published(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    count_containers: Any,
) -> None:
    """Bookworm's 2022 package declares API 1.0.0 / schema 1.0.0, which 2.0.0+driver
    (schema 2.0.0) does not accept: refused at driver-source naming both, with the suites
    the mirror was searched in (none has a 2.0.0-compatible package), no compile."""
    config = make_config(source=DKMS_SOURCE)
    with count_containers() as created:
        outcome = build(docker_client, config, kernel_release, "2.0.0+driver", KMOD)
    error = outcome.error
    assert isinstance(error, BuildError)
    assert error.step == "driver-source"
    assert (f"failed at step driver-source: driver source {DKMS_SOURCE!r} does not fit: "
            "driver version 2.0.0+driver requires API 1.0.0 / schema 2.0.0 (the same majors, "
            "minor.patch at least these), but the driver has API 1.0.0 / schema 1.0.0; "
            "no suite of the mirror has a falcosecurity-scap-dkms that fits (looked at: "
            "trixie API 8.0.3 / schema 3.5.0, ") in str(error)
    assert "sid API 8.0.4 / schema 4.1.0)" in str(error)
    assert "compile" not in created.steps()
    assert visible(config.store) == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_package_without_suite_that_does_not_fit_names_the_suite_that_does(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
) -> None:
    """deb:<package> resolves to bookworm's snapshot; for 8.0.0+driver the error points at
    the suite whose package fits."""
    config = make_config(source=DKMS_SOURCE)
    outcome = build(docker_client, config, kernel_release, "8.0.0+driver", KMOD)
    assert isinstance(outcome.error, BuildError)
    assert outcome.error.step == "driver-source"
    assert ("but the driver has API 1.0.0 / schema 1.0.0; suites with a version that fits: "
            "deb:falcosecurity-scap-dkms/trixie\n") in str(outcome.error)
    assert visible(config.store) == []
