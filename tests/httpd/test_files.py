"""index.json carries each artifact's load-test result (written beside it by the build's
load-test gate), null where none ran, and never reads one through a symlink."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.edges.store.local import LOAD_TEST_SUFFIX, Store
from reconciler.httpd.files import StoreFiles
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId


def test_the_index_carries_the_load_test_result_beside_each_artifact(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    kernel = KernelId("debian", "6.1.0-57-cloud-amd64", "1", "x86_64")
    source = tmp_path / "built"
    source.write_bytes(b"\x7fELF not really a module")
    tested, plain, linked = (
        store.publish(ArtifactKey.for_kernel(kernel, version, DriverKind.KMOD), source)
        for version in ("8.0.0+driver", "8.1.0+driver", "9.0.0+driver"))
    result = LoadTestResult(Outcome.PASSED, "kmod", (), True, 1444, 0, 5, 5, 9.8,
                            kernel.kernel_release, "ab" * 32, "8.0.0+driver", "1", "/x.log")
    tested.path.with_name(tested.path.name + LOAD_TEST_SUFFIX).write_text(
        json.dumps(result.to_json()))
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(result.to_json()))
    linked.path.with_name(linked.path.name + LOAD_TEST_SUFFIX).symlink_to(elsewhere)

    by_path = {e["path"]: e["loadTest"] for e in StoreFiles(store).index()}

    assert by_path[tested.key.relpath] == result.to_json()
    assert by_path[plain.key.relpath] is None
    assert by_path[linked.key.relpath] is None
