"""edges.state.files: the build queue and the retention ledger as the observe stage reads
them, on real files under a state folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from reconciler.edges.state import buildqueue
from reconciler.edges.state.files import LedgerFile, QueueFile
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.buildrequests import Requested
from reconciler.model.ledger import Ledger

KEY = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.0-9-amd64", "1", DriverKind.KMOD)


def test_no_queue_file_means_nothing_requested_and_a_pending_entry_is_read(
        tmp_path: Path) -> None:
    assert QueueFile(tmp_path).requested() == ()
    queue = buildqueue.BuildQueue(tmp_path, limit=8)
    queue.offer("db-1", "127.0.0.1", [Requested(KEY)])
    assert QueueFile(tmp_path).requested() == ((Requested(KEY), ("db-1",)),)


def test_the_ledger_written_is_the_ledger_read(tmp_path: Path) -> None:
    book = LedgerFile(tmp_path)
    assert book.read() == Ledger()
    seen = Ledger({KEY.relpath: dt.datetime(2026, 1, 2, tzinfo=dt.UTC)})
    book.write(seen)
    assert LedgerFile(tmp_path).read() == seen
    assert json.loads((tmp_path / "retention.json").read_text())["unwanted"] == {
        KEY.relpath: "2026-01-02T00:00:00Z"}
