"""The state-dir lock: one daemon per state dir; a stale pid is not trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.daemon import lock
from reconciler.errors import ConfigError


def test_one_daemon_per_state_dir(tmp_path: Path) -> None:
    assert lock.holder(tmp_path) is None
    with lock.StateDirLock(tmp_path):
        assert lock.holder(tmp_path) is not None
        with pytest.raises(ConfigError, match="another daemon"):
            lock.StateDirLock(tmp_path).acquire()
    assert lock.holder(tmp_path) is None  # a stale pid in the file is not trusted
