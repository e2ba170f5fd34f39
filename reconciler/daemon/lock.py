"""One daemon per state dir: an exclusive ``fcntl`` lock on ``<state_dir>/daemon.lock``.

The lock file holds the daemon's pid, so ``reconcile``/``suspend``/``resume`` know whom
to signal; the lock (not the pid) says whether that daemon still lives, so a pid left by
a daemon killed with -9 is never trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import IO

from reconciler.errors import ConfigError

LOCK_NAME = "daemon.lock"


class StateDirLock:
    """Held for the daemon's lifetime; ``acquire`` raises ConfigError if another holds it."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> StateDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        # A few tries: `status` and `reconcile` take the lock shared for an instant.
        for attempt in range(10):
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if attempt < 9:
                    time.sleep(0.05)
                    continue
                handle.close()
                other = holder(self.path.parent)
                raise ConfigError(
                    f"another daemon (pid {other or '?'}) already runs on state dir "
                    f"{self.path.parent}"
                ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
            self._handle.close()  # closing drops the flock
            self._handle = None

    def __enter__(self) -> StateDirLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def holder(state_dir: Path) -> int | None:
    """The pid of the daemon holding the lock, or None when no daemon runs there."""
    path = state_dir / LOCK_NAME
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None
