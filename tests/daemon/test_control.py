"""control.json: suspension is persisted, with or without a daemon to poke."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon import control


def test_suspension_is_persisted(tmp_path: Path) -> None:
    assert control.read(tmp_path).suspended is False
    control.set_suspended(tmp_path, True)
    assert control.read(tmp_path).suspended is True
    assert control.poke(tmp_path) is None  # no daemon: the file alone carries it
    control.set_suspended(tmp_path, False)
    assert control.read(tmp_path).suspended is False
