"""The README's main source, Debian's falcosecurity-scap-dkms from trixie, load-tested end
to end: a real build of the module for the newest cached Debian kernel, through the
build's load-test gate with tests required, so the module is published only if it passed.
scap-open comes from Debian's own falcosecurity-libs source package of the same version
(deb-src lines for trixie in the builder's apt sources), as the DKMS tree has no libscap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.builder import runner, sources
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.loadtest import tester
from reconciler.loadtest.gate import Gate
from reconciler.loadtest.policy import Policy
from reconciler.model.artifacts import DriverKind
from tests.builder.helpers import CACHE_ROOT, DKMS_SOURCE, request
from tests.support import kernelpkg
from tests.support.loadtest import DRIVER_VERSION, require_vm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRIXIE = f"{DKMS_SOURCE}/trixie"


def test_upstream_version_drops_the_epoch_and_the_debian_revision() -> None:
    assert tester.upstream_version("0.20.0-3") == "0.20.0"
    assert tester.upstream_version("1:0.21.0-1~bpo12+1") == "0.21.0"
    assert tester.upstream_version("0.20.0") == "0.20.0"


def test_a_trixie_dkms_module_is_tested_with_scap_open_from_debians_libs_source(
    engine: Docker, base_image: str, tmp_path: Path,
) -> None:
    """Required tests: the module is published only because it passed, and its result says
    the userspace was Debian's libscap 0.20.0 (the source package's upstream version)."""
    require_vm()
    own, = kernelpkg.require(1)
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").symlink_to(CACHE_ROOT / "cache")
    setup = tester.Setup(tmp_path, TRIXIE, base_image)
    config = runner.BuildConfig(state_dir=tmp_path, store=tmp_path / "store", source=TRIXIE,
                                base_image=base_image, jobs=2, timeout=1800.0,
                                load_test=Gate(engine, Policy.REQUIRED, setup))
    (outcome,) = runner.build_all([request(own.release, DRIVER_VERSION, DriverKind.KMOD)],
                                  config, engine, Store(config.store))
    assert outcome.error is None, str(outcome.error)
    (artifact,) = outcome.artifacts
    result = json.loads(artifact.path.with_name(artifact.path.name + ".loadtest.json")
                        .read_text())
    assert result["result"] == "passed", result["reasons"]
    assert result["libsVersion"] == "0.20.0"
    assert result["markersFound"] == 5 and result["kernelRelease"] == own.release
    # the libs tree is Debian's patched source (dpkg-source -x), at the DKMS package's version
    libs = [p for p in (tmp_path / "cache" / "sources").glob("*/root/.debian-source-version")]
    assert any(p.read_text().startswith("0.20.0-") for p in libs)
    assert any(sources.classify(p.parent, "x").kind is sources.TreeKind.LIBS for p in libs)
