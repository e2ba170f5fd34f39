"""Named file locks, so threads and processes sharing a state dir do each job once.

``flock`` on a fresh open of the lock file: two opens conflict even in one process, so
the same lock serialises threads as well as processes, and the kernel drops it when a
process dies (kill -9 included).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
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
