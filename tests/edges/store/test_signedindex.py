"""edges.store.signedindex: the records beside the store read back, and one that cannot
be read, is too big or does not parse counts as absent (a pass goes on without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.edges.store import signedindex


def test_versions_seen_read_back_and_a_bad_record_counts_as_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    signedindex.remember(tmp_path, {"a" * 64: 3})
    assert signedindex.seen(tmp_path) == {"a" * 64: 3}
    record = tmp_path / signedindex.FOLDER / "seen.json"
    monkeypatch.setattr(signedindex, "MAX_DOCUMENT", record.stat().st_size - 1)
    assert signedindex.seen(tmp_path) == {}  # one byte over the limit
    monkeypatch.undo()
    record.write_text("{not json")
    assert signedindex.seen(tmp_path) == {}
    record.unlink()
    record.mkdir()  # unreadable as a file
    assert signedindex.seen(tmp_path) == {}
