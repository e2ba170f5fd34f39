"""The replay guard: each signed nonce taken once, stale bodies refused (fake clock)."""

from __future__ import annotations

from reconciler.httpd.replay import ReplayGuard
from reconciler.model.buildrequests import Stamp


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_nonce_is_taken_once_within_the_window() -> None:
    clock = Clock()
    guard = ReplayGuard(300, clock=clock)
    stamp = Stamp(int(clock.now), "n" * 16)
    assert guard.refusal(stamp) is None
    clock.now += 200
    assert "replay" in (guard.refusal(stamp) or "")
    assert guard.refusal(Stamp(int(clock.now), "m" * 16)) is None


def test_bodies_outside_the_window_are_stale_either_side() -> None:
    clock = Clock()
    guard = ReplayGuard(300, clock=clock)
    assert "stale" in (guard.refusal(Stamp(int(clock.now) - 301, "a" * 16)) or "")
    assert "stale" in (guard.refusal(Stamp(int(clock.now) + 301, "b" * 16)) or "")


def test_nonces_are_forgotten_only_once_their_bodies_are_stale() -> None:
    clock = Clock()
    guard = ReplayGuard(300, clock=clock)
    stamp = Stamp(int(clock.now), "c" * 16)
    assert guard.refusal(stamp) is None
    clock.now += 601  # forgotten now, and the body itself is stale: still refused
    assert guard.refusal(stamp) is not None


def test_a_full_table_refuses_rather_than_forgets() -> None:
    clock = Clock()
    guard = ReplayGuard(300, max_nonces=2, clock=clock)
    assert guard.refusal(Stamp(int(clock.now), "d" * 16)) is None
    assert guard.refusal(Stamp(int(clock.now), "e" * 16)) is None
    assert guard.refusal(Stamp(int(clock.now), "f" * 16)) is not None


def test_after_a_restart_nothing_sent_before_it_is_taken() -> None:
    """A request taken by the server before its restart (its nonce then forgotten, the
    table being in memory) is refused by the new one, although it is fresh; a new
    request, sent in the restart's second or later, is taken."""
    clock = Clock()
    before = ReplayGuard(300, clock=clock)
    stamp = Stamp(int(clock.now), "d" * 16)
    assert before.refusal(stamp) is None
    clock.now += 30.4  # the daemon restarts
    after = ReplayGuard(300, clock=clock)
    refused = after.refusal(stamp) or ""
    assert "before this build host's server started" in refused and "send a new one" in refused
    assert after.refusal(Stamp(int(clock.now), "e" * 16)) is None
