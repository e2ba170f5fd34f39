"""One live progress display for builds and image pulls, on a terminal (rich).

Each build is a row (elapsed, step, state, artifact) and each image pull a bar of the bytes
its layers have come down. While the display runs, the log events it shows
(``driver.build.step``, ``image.pull.progress``) are not also written as log lines
(``logs.shown_live``). Off a terminal there is no display: the structured JSON logs carry
the same events, one each.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reconciler import logs
from reconciler.builder import BuildEvent, Phase
from reconciler.runtime import Progress

SHOWN_EVENTS = frozenset({"driver.build.step", "image.pull.progress"})


@dataclass
class _Build:
    step: str
    phase: Phase
    started: float  # monotonic time the build began
    ended: float | None = None
    detail: str = ""


@dataclass
class _Pull:
    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (current, total)
    status: str = ""


class Board:
    """The state the display draws; fed from build and pull threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.builds: dict[str, _Build] = {}
        self.pulls: dict[str, _Pull] = {}

    def build(self, event: BuildEvent) -> None:
        now = time.monotonic()
        with self._lock:
            started = now - event.elapsed
            ended = now if event.phase is Phase.FAILED else None
            self.builds[event.artifact] = _Build(str(event.step), event.phase, started, ended,
                                                 event.detail)

    def pull(self, image: str, event: Mapping[str, Any]) -> None:
        with self._lock:
            pull = self.pulls.setdefault(image, _Pull())
            detail = event.get("progressDetail") or {}
            layer = str(event.get("id", ""))
            if layer and detail.get("total"):
                pull.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
            elif layer and event.get("status") in ("Pull complete", "Already exists"):
                _current, total = pull.layers.get(layer, (0, 0))
                pull.layers[layer] = (total, total)
            pull.status = str(event.get("status", pull.status))

    def render(self) -> RenderableType:
        now = time.monotonic()
        with self._lock:
            # The artifact goes last: on a narrow terminal only its long name folds.
            table = Table(box=None, pad_edge=False, show_header=bool(self.builds))
            table.add_column("elapsed", justify="right", no_wrap=True)
            table.add_column("step", no_wrap=True)
            table.add_column("state")
            table.add_column("artifact", overflow="fold")
            for artifact, build in self.builds.items():
                elapsed = (build.ended or now) - build.started
                state = build.phase.value if not build.detail else (
                    f"{build.phase.value}: {build.detail}")
                # Text, not markup: "[kmod]" in a name is not a style tag.
                table.add_row(f"{elapsed:.1f}s", build.step, Text(state), Text(artifact))
            bars: list[RenderableType] = []
            for image, pull in self.pulls.items():
                current = sum(c for c, _t in pull.layers.values())
                total = sum(t for _c, t in pull.layers.values()) or None
                bars.append(Text(f"pull {image}: {pull.status}"))
                bars.append(ProgressBar(total=total, completed=current, width=40))
        return Group(table, *bars)

    def done_build(self, artifact: str) -> None:
        with self._lock:
            build = self.builds.get(artifact)
            if build is not None and build.ended is None:
                build.ended = time.monotonic()

    def running(self) -> list[str]:
        """The builds still going (their artifacts), oldest first."""
        with self._lock:
            return [a for a, b in self.builds.items() if b.ended is None]

    def clear(self) -> None:
        """Forget the builds and pulls shown (a daemon's pass is over)."""
        with self._lock:
            self.builds.clear()
            self.pulls.clear()


def on_build(board: Board) -> Callable[[BuildEvent], None]:
    """A build's events onto ``board``; a published artifact's row stops its clock."""

    def show(event: BuildEvent) -> None:
        board.build(event)
        if event.phase is Phase.DONE and str(event.step) == "publish":
            board.done_build(event.artifact)

    return show


def live_console(stream: TextIO | None, *, force: bool = False,
                 width: int | None = None) -> Console | None:
    """The console a live display draws on: stderr (or ``stream``) when it is a terminal
    and logs are for a person, or when ``force``d (tests); None otherwise."""
    out = stream or sys.stderr
    if not force and not (logs.console() and out.isatty()):
        return None
    return Console(file=out, force_terminal=True, width=width)


@contextlib.contextmanager
def display(
    stream: TextIO | None = None, *, force: bool = False, width: int | None = None,
) -> Iterator[Progress]:
    """A live display on a terminal (or when forced, for tests); else no progress."""
    console = live_console(stream, force=force, width=width)
    if console is None:
        yield Progress()
        return
    board = Board()
    with logs.shown_live(SHOWN_EVENTS), Live(get_renderable=board.render, console=console,
                                             refresh_per_second=4, transient=False):
        yield Progress(build=on_build(board), pull=board.pull)
