"""The daemon on a terminal: what each pass does, in words, with its builds live.

Under systemd the daemon writes JSON lines and nothing here runs. On a terminal a person
watches it: a line when it starts (what it serves and follows), one when a pass has a plan
("pass 3 at 1a2b3c4d5e6f: 2 to build, 1 to replace"), a line per change applied, one
error line per failure with its whole cause under it, and the pass's end; the builds of
the pass are live rows (step, elapsed) below. The events shown so are not also written as
log lines (``logs.shown_by``): each is said once. A first Ctrl-C is answered with what
still runs ("finishing build X; Ctrl-C again to cancel").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from reconciler import logs
from reconciler.commands.progress import SHOWN_EVENTS, Board, live_console, on_build
from reconciler.runtime import Progress

_MARKS = {"change.applied": ("✓", "green"), "change.failed": ("✗", "bold red"),
          "change.skipped": ("·", "yellow"), "change.pending": ("…", "cyan")}


def _short(revision: object) -> str:
    return str(revision)[:12] if revision else "-"


Event = dict[str, Any]


class View:
    """What the words depend on: the builds on the board, and how often Ctrl-C came."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.interrupts = 0


def _seconds(event: Event) -> str:
    seconds = event.get("seconds")
    return f"{seconds:.1f} s" if isinstance(seconds, int | float) else "?"


def _planned(event: Event, _view: View) -> Text:
    return Text(f"pass at {_short(event.get('revision'))}: {event.get('summary')}",
                style="bold")


def _finished(event: Event, view: View) -> Text:
    view.board.clear()
    result = str(event.get("result"))
    style = {"ok": "green", "failed": "bold red", "error": "bold red"}.get(result, "")
    if result == "ok" and event.get("message") == "nothing to do":
        style = "dim"  # a pass that found the host as wanted: said, not shouted
    text = Text(f"pass {event.get('number')} {result} in {_seconds(event)}; "
                f"applied {_short(event.get('applied'))}", style=style)
    if result != "failed" and event.get("message"):
        text.append(f": {event['message']}")  # a failed pass's causes were said, each once
    return text


def _change(event: Event, _view: View) -> Text:
    mark, style = _MARKS[event["event"]]
    message = str(event.get("message") or "").strip().splitlines()
    text = Text(f"  {mark} {event.get('op')} {event.get('name')}", style=style)
    if event["event"] == "change.applied":
        text.append(f" ({_seconds(event)})", style="dim")
        return text
    if message:
        text.append(f": {message[0]}")
        for line in message[1:]:
            text.append(f"\n      {line}", style="dim")
    return text


def _signal(event: Event, view: View) -> Text:
    if event.get("signal") != "SIGINT":
        return Text(f"got {event.get('signal')}: stopping after this pass")
    view.interrupts += 1
    running = view.board.running()
    if view.interrupts > 1:
        return Text(f"cancelling build {', '.join(running)}" if running else "stopping now",
                    style="bold yellow")
    if running:
        return Text(f"finishing build {', '.join(running)}; Ctrl-C again to cancel",
                    style="yellow")
    return Text("stopping after this pass", style="yellow")


def _load_tested(event: Event, _view: View) -> Text:
    result = str(event.get("result"))
    style = {"passed": "green", "failed": "bold red"}.get(result, "yellow")
    name = str(event.get("artifact", "")).rsplit("/", 1)[-1]
    return Text(f"  load test of {name} in a VM of its kernel: {result} ({event.get('events')} "
                f"events, {event.get('drops')} drops, {_seconds(event)})", style=style)


def _quiet(_event: Event, _view: View) -> None:
    return None  # said by another line: the plan's (pass.started), the pass's end


_WORDS: dict[str, Callable[[Event, View], Text | None]] = {
    **{name: _change for name in _MARKS},
    "daemon.started": lambda e, _v: Text(
        f"serving {e.get('serving')}; following {e.get('repo')} (Ctrl-C stops)", style="bold"),
    "daemon.signal": _signal,
    "daemon.stopping": _quiet,
    "daemon.suspended": lambda _e, _v: Text(
        "suspended: reconciliation paused, the server keeps serving", style="yellow"),
    "daemon.resumed": lambda _e, _v: Text("resumed"),
    "pass.started": _quiet,
    "pass.planned": _planned,
    "pass.finished": _finished,
    "pass.retry": lambda e, _v: Text(
        f"retrying in {e.get('seconds')} s (attempt {e.get('attempt')})", style="yellow"),
    "revision.refused": lambda e, _v: Text(
        f"revision {_short(e.get('revision'))} refused: {e.get('reason')}", style="bold red"),
    "revision.applied": _quiet,
    "pass.applied": _quiet,
    "driver.built": _quiet,  # the change's line says it; its build log is in `status`
    "http.listening": _quiet,  # daemon.started says what is served
    "http.stopped": _quiet,
    "daemon.interrupted": lambda _e, _v: Text("cancelled", style="yellow"),
    "daemon.stopped": lambda _e, _v: Text("stopped"),
    "vm.boot.done": _quiet,  # the load test's own line follows
    "loadtest.done": _load_tested,
}
EVENTS = frozenset(_WORDS) | {"pass.held"}


def describe(event: Event, view: View) -> Text | None:
    """One event as a person reads it (None: nothing to say)."""
    words = _WORDS.get(event["event"])
    if words is not None:
        return words(event, view)
    return Text(f"{event['event']}: " + ", ".join(
        f"{k}={v}" for k, v in event.items() if k not in ("event", "level", "timestamp")))


@contextlib.contextmanager
def display(stream: TextIO | None = None, *, force: bool = False,
            width: int | None = None) -> Iterator[Progress]:
    """The daemon's live view on a terminal (or when forced, for tests); else nothing, and
    the daemon's events stay structured log lines."""
    console = live_console(stream, force=force, width=width)
    if console is None:
        yield Progress()
        return
    board = Board()
    show = _printer(console, View(board))
    with logs.shown_live(SHOWN_EVENTS), logs.shown_by(EVENTS, show), \
            logs.lines_to(lambda line: console.print(Text.from_ansi(line), highlight=False)), \
            Live(get_renderable=board.render, console=console, refresh_per_second=4,
                 transient=True):
        yield Progress(build=on_build(board), pull=board.pull)


def _printer(console: Console, view: View) -> Callable[[MutableMapping[str, Any]], None]:
    def show(event: MutableMapping[str, Any]) -> None:
        said = describe(dict(event), view)
        if said is not None:
            console.print(said, highlight=False)
    return show
