"""Exponential backoff with jitter for transient failures; reset by a successful pass.

Pure: ``delay(attempt)`` takes the random source as an argument, so it is testable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0
    cap: float = 300.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): "equal jitter", so retries of
        many hosts spread out but never come sooner than half the nominal delay."""
        nominal = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        pick = (rng or random).random()
        return nominal / 2 + pick * nominal / 2


def jittered(interval: float, spread: float = 0.1, rng: random.Random | None = None) -> float:
    """``interval`` give or take ``spread`` of it, so a fleet does not poll in step."""
    pick = (rng or random).random()
    return interval * (1 - spread + 2 * spread * pick)
