"""Named file locks, so threads and processes sharing a state dir do each job once.

``flock`` on a fresh open of the lock file: two opens conflict even in one process, so
the same lock serialises threads as well as processes, and the kernel drops it when a
process dies (kill -9 included).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_stale_partials(folders: Iterable[Path]) -> int:
    """Remove ``.<name>.partial-*`` folders in ``folders`` whose ``.<name>.lock`` nobody
    holds: what a fetch killed mid-way left. A fetch still running holds its lock."""
    removed = 0
    for partial in (p for folder in folders for p in folder.glob(".*.partial-*")):
        name = partial.name[1:].split(".partial-", 1)[0]
        lock = partial.with_name(f".{name}.lock")
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            try:
                shutil.rmtree(partial, ignore_errors=True)
                removed += 1
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return removed
