"""locks: one holder at a time, and what a killed fetch left is removed only when free."""

from __future__ import annotations

import fcntl
from pathlib import Path

from reconciler.builder import locks


def test_a_partial_folder_is_removed_only_when_nobody_holds_its_lock(tmp_path: Path) -> None:
    partial = tmp_path / ".6.1.0-57-cloud-amd64.partial-1a2b3c4d"
    (partial / "root/usr/src").mkdir(parents=True)
    complete = tmp_path / "6.1.0-57-cloud-amd64"
    complete.mkdir()
    lock = tmp_path / ".6.1.0-57-cloud-amd64.lock"
    with lock.open("a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # a fetch is running
        assert locks.remove_stale_partials([tmp_path]) == 0
        assert partial.exists()
    assert locks.remove_stale_partials([tmp_path]) == 1
    assert not partial.exists()
    assert complete.exists()


def test_held_serialises_holders_within_one_process(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "x.lock"
    with locks.held(lock), lock.open("a") as other:
        try:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            blocked = True
        else:
            blocked = False
    assert blocked
