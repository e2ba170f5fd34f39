"""Wakeup: a burst of triggers is one wakeup with every reason, and drift events
caused by our own pass are dropped."""

from __future__ import annotations

import threading
import time

from reconciler.daemon.wakeup import Wakeup


def test_a_burst_of_triggers_is_one_wakeup_with_every_reason() -> None:
    wakeup = Wakeup(debounce=0.1)

    def burst() -> None:
        for reason in ("git", "git", "webhook", "sighup"):
            wakeup.wake(reason)
            time.sleep(0.02)

    threading.Thread(target=burst).start()
    assert wakeup.wait(5) == {"git", "webhook", "sighup"}
    assert wakeup.wait(0.05) == set()


def test_drift_events_caused_by_our_own_pass_are_dropped() -> None:
    wakeup = Wakeup(debounce=0.01)
    wakeup.pass_started()
    during = time.time()
    wakeup.wake("docker:die", at=during)
    wakeup.pass_finished()
    wakeup.wake("docker:destroy", at=during)  # delivered late, happened during the pass
    assert wakeup.wait(0.05) == set()
    wakeup.wake("docker:die", at=time.time())
    assert wakeup.wait(1) == {"docker:die"}
