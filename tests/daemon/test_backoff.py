"""Backoff: doubling up to a cap, with equal jitter; the poll timer's jitter."""

from __future__ import annotations

import random

from reconciler.daemon.backoff import Backoff, jittered


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    policy = Backoff(base=2, cap=60)
    rng = random.Random(1)
    for attempt, nominal in [(1, 2), (2, 4), (3, 8), (6, 60), (20, 60)]:
        for _ in range(50):
            assert nominal / 2 <= policy.delay(attempt, rng) <= nominal
    spread = {round(jittered(60, rng=rng)) for _ in range(200)}
    assert min(spread) >= 54 and max(spread) <= 66 and len(spread) > 5
