"""How ``suspend``, ``resume`` and ``reconcile`` reach a running daemon.

Suspension is a fact about the state dir, not about a process, so it is persisted in
``<state_dir>/control.json`` (written atomically) and survives restarts; the daemon is
then told with SIGHUP, which also means "reconcile now". With no daemon running the file
alone is enough: the next daemon reads it at start.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from reconciler.daemon import lock, state
from reconciler.edges import atomic
from reconciler.errors import ConfigError

CONTROL_NAME = "control.json"


@dataclass(frozen=True)
class Control:
    suspended: bool = False
    since: str | None = None


def read(state_dir: Path) -> Control:
    try:
        data = json.loads((state_dir / CONTROL_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Control()
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {state_dir / CONTROL_NAME}: {exc}") from exc
    return Control(bool(data.get("suspended", False)), data.get("since"))


def write(state_dir: Path, control: Control) -> None:
    body = json.dumps({"suspended": control.suspended, "since": control.since}) + "\n"
    atomic.write_bytes(state_dir / CONTROL_NAME, body.encode())


def existing(state_dir: Path) -> Path:
    """``state_dir`` if a daemon's state is there; a typo'd ``--state-dir`` is an error, not
    a new folder that no daemon will ever read."""
    if not state_dir.is_dir():
        raise ConfigError(
            f"no daemon state at {state_dir}: no `reconciler run` has used this --state-dir "
            f"(it makes the folder when it starts); check the path or the config's state_dir"
        )
    return state_dir


def set_suspended(state_dir: Path, suspended: bool) -> Control:
    current = read(existing(state_dir))
    if current.suspended == suspended:
        return current
    wanted = Control(suspended, state.now())
    write(state_dir, wanted)
    return wanted


def poke(state_dir: Path) -> int | None:
    """SIGHUP the daemon of this state dir; its pid, or None when none runs."""
    pid = lock.holder(state_dir)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    except PermissionError as exc:
        raise ConfigError(f"not allowed to signal the daemon (pid {pid}): run as its user") \
            from exc
    return pid
