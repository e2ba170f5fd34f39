"""Where every trigger lands: reasons collected, bursts debounced into one pass.

Triggers from threads call ``wake(reason)``; the loop calls ``wait(timeout)``, which
returns the set of reasons once the first one arrived and no new one came for
``debounce`` seconds (at most ``4 * debounce`` in all). Drift triggers (a Docker event,
a store change) carry the wall-clock time they happened: one that happened while our own
pass ran is the pass's own doing (a container it replaced, an artifact it published) and
is dropped, so a rollback can never feed itself.
"""

from __future__ import annotations

import threading
import time


class Wakeup:
    def __init__(self, debounce: float = 0.2) -> None:
        self.debounce = debounce
        self._cond = threading.Condition()
        self._reasons: set[str] = set()
        self._count = 0  # wakes so far, so a burst of one reason is still a burst
        self._busy_since: float | None = None
        self._last_window: tuple[float, float] = (0.0, 0.0)

    def wake(self, reason: str, at: float | None = None) -> None:
        with self._cond:
            if at is not None and self._ours(at):
                return
            self._reasons.add(reason)
            self._count += 1
            self._cond.notify_all()

    def _ours(self, at: float) -> bool:
        if self._busy_since is not None and at >= self._busy_since:
            return True
        start, end = self._last_window
        return start <= at <= end

    def wait(self, timeout: float | None) -> set[str]:
        """Reasons to run a pass now (empty if ``timeout`` passed without any)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._reasons:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return set()
                self._cond.wait(60.0 if remaining is None else remaining)
            first = time.monotonic()
            seen = self._count
            while True:
                self._cond.wait(self.debounce)
                if self._count == seen or time.monotonic() - first >= 4 * self.debounce:
                    break
                seen = self._count
            reasons, self._reasons = self._reasons, set()
            return reasons

    def pass_started(self) -> None:
        with self._cond:
            self._busy_since = time.time()

    def pass_finished(self) -> None:
        with self._cond:
            if self._busy_since is not None:
                self._last_window = (self._busy_since, time.time())
            self._busy_since = None
