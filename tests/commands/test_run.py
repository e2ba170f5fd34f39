"""commands.run's signals: the first Ctrl-C lets the pass finish, the second cancels it;
SIGTERM (systemd) always stops after the pass (a build under SIGTERM is cancelled by the
builder itself, see builder.runner.sigterm_as_interrupt)."""

from __future__ import annotations

import signal
from typing import Any, cast

import pytest

from reconciler.commands import run


class _Loop:
    def __init__(self) -> None:
        self.stops = 0

    def request_stop(self) -> None:
        self.stops += 1


class _Daemon:
    def __init__(self) -> None:
        self.loop = _Loop()


def _handler(signum: int) -> Any:
    return signal.getsignal(signum)


def test_ctrl_c_once_finishes_the_pass_twice_cancels_it() -> None:
    daemon = _Daemon()
    with run._signals(cast("Any", daemon)):
        _handler(signal.SIGINT)(signal.SIGINT, None)
        assert daemon.loop.stops == 1
        with pytest.raises(KeyboardInterrupt):
            _handler(signal.SIGINT)(signal.SIGINT, None)


def test_sigterm_always_stops_after_the_pass() -> None:
    daemon = _Daemon()
    with run._signals(cast("Any", daemon)):
        for _ in range(3):
            _handler(signal.SIGTERM)(signal.SIGTERM, None)
    assert daemon.loop.stops == 3
    assert _handler(signal.SIGTERM) is not None  # restored after the block
