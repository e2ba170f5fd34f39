"""The clock seam: the fake moves only when told to or by the sleeps it was asked for;
the real one's monotonic time never goes back."""

from __future__ import annotations

import threading

from reconciler.edges.clock import SystemClock
from reconciler.testing import FakeClock


def test_the_fake_clock_moves_only_by_advance_and_sleep() -> None:
    clock = FakeClock(start=100.0)
    assert clock.monotonic() == clock.time() == 100.0
    clock.sleep(2.5)
    clock.advance(10)
    clock.sleep(-1)  # a negative wait waits nothing, as time.sleep would refuse it
    assert clock.monotonic() == 112.5
    assert clock.slept == [2.5, -1]


def test_the_fake_clock_can_be_moved_from_many_threads() -> None:
    clock = FakeClock(start=0.0)
    threads = [threading.Thread(target=lambda: [clock.advance(1) for _ in range(1000)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.monotonic() == 4000


def test_the_system_clock_is_the_machines() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    clock.sleep(0.01)
    assert clock.monotonic() > first
    assert clock.time() > 1_700_000_000  # seconds since the epoch, not since boot
