"""The rollout ledger: written whole, read back the same, and an unreadable one is empty."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.rollout import History
from reconciler.edges.state import waves


def test_a_history_reads_back_as_written(tmp_path: Path) -> None:
    history = History((("a", 1.5), ("b", 2.0)), {"b/1": 3.0}, "a", ("a",), frozenset({"c"}))
    waves.write(tmp_path, history)
    assert waves.read(tmp_path) == history
    assert [p.name for p in tmp_path.iterdir()] == ["rollout.json"]  # no temp file left


def test_a_missing_or_unreadable_ledger_is_an_empty_history(tmp_path: Path) -> None:
    assert waves.read(tmp_path) == History()
    waves.path(tmp_path).write_text('{"format": 1, "seen": 3}')
    assert waves.read(tmp_path) == History()
