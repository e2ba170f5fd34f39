"""What the steps of a build share: their names, how one fails, and the build's log file.

A step raises ``StepFailed`` with a one-line reason (and marks a timeout); the runner
knows which step it was running and turns that into ``errors.BuildError`` naming the
artifact, the step, the log file and the last lines of output.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from functools import cache
from importlib import resources
from pathlib import Path

from reconciler.edges.docker import jobs
from reconciler.errors import StepFailed

TAIL_LINES = 20


@cache
def script(*names: str) -> str:
    """Shell scripts of ``builder/scripts/`` (package data), joined in order, as the
    builder runs them (a library of functions first, then the script that calls them)."""
    folder = resources.files("reconciler.builder") / "scripts"
    return "\n".join((folder / name).read_text("utf-8") for name in names)


class Step(enum.StrEnum):
    BUILDER_IMAGE = "builder-image"
    KERNEL_HEADERS = "kernel-headers"
    DRIVER_SOURCE = "driver-source"
    COMPILE = "compile"
    SIGN = "sign"  # only for a request that names a signing key
    VERIFY = "verify"
    LOAD_TEST = "load-test"  # only when a load-test gate is configured
    PUBLISH = "publish"




def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def check(result: jobs.RunResult, what: str, log: BuildLog) -> None:
    """Log a container's output and raise ``StepFailed`` unless it exited 0."""
    log.write(result.output)
    if result.timed_out:
        raise StepFailed(f"{what} timed out", output=result.output, timed_out=True)
    if not result.ok:
        raise StepFailed(f"{what} failed (exit {result.exit_code})", output=result.output)


class BuildLog:
    """The full log of one build, appended as steps run; keeps the last lines in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def write(self, text: str) -> None:
        if not text:
            return
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)
            self._tail.extend(text.splitlines())

    def note(self, line: str) -> None:
        """A line of our own, marked so it stands out from tool output."""
        self.write(f"### {line}")

    def tail(self) -> str:
        with self._lock:
            return "\n".join(line for line in self._tail)
