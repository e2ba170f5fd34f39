"""Where an older Falco's userspace comes from: a source that cannot give another libs
version says so before any container runs (the engine here records what would run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import LoadTestError
from reconciler.loadtest import tester
from reconciler.testing import FakeEngine


@pytest.mark.parametrize("source", ["/srv/libs-8.0.0+driver.tar.gz", "/srv/libs-tree",
                                    "https://user:secret@mirror.example/libs.tar.gz"])
def test_a_source_of_one_tree_cannot_give_an_older_falcos_libs(
    source: str, tmp_path: Path,
) -> None:
    engine = FakeEngine()
    with pytest.raises(LoadTestError) as raised:
        tester.prepare_libs(engine, tester.Setup(tmp_path, source, "base"), "0.20.0")
    assert "no source of libs 0.20.0" in str(raised.value)
    assert "a URL template with {driverVersion}" in str(raised.value)
    assert "secret" not in str(raised.value)  # a URL's credentials are never shown
    assert engine.calls == []
