"""Structured logs: one event name and key/value fields, JSON unless on a terminal.

Logs go to stderr, so stdout stays clean for ``--json`` output; the stream is looked up
at each write, so a replaced ``sys.stderr`` (tests, daemons re-opening it) is followed.

structlog is imported when the first event is written, not before: its import (asyncio
among others) is a tenth of a second's start-up, and a ``plan`` or ``validate`` usually
writes no log at all. ``configure`` only records the wanted setup; it is applied then.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from reconciler.model.urls import redacted

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger

_wanted = ("info", "auto")
_applied = False
_generation = 0  # bumped by each _apply: loggers made before it are made again
# Events a live display (commands.progress) is showing right now: not written again.
_live: frozenset[str] = frozenset()


class _StderrLogger:
    """structlog's output: each event one line on the current ``sys.stderr``.

    A real stream gets the line in one ``os.write`` (whole: a line shorter than a pipe's
    buffer is never split, and a file opened to append takes it in one piece), with no
    lock of ours: the server's workers write an access line per request, and a lock
    around a flushed ``print`` had them waiting on each other. A stream without a file
    descriptor (a test's capture) is written to and flushed as a file."""

    def msg(self, message: str) -> None:
        if _line_sink is not None:
            _line_sink(message)  # a live display draws the line above itself
            return
        stream = sys.stderr
        line = message + "\n"
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            stream.write(line)
            stream.flush()
            return
        stream.flush()  # anything written to it before, first
        data = line.encode("utf-8", "replace")
        while data:
            data = data[os.write(fd, data):]

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _STDERR


_STDERR = _StderrLogger()


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Log at ``level`` and above, as ``fmt`` (json, console, or auto: json unless stderr
    is a terminal). Takes effect with the next event written."""
    global _wanted, _applied  # noqa: PLW0603 - logging is process-wide by nature
    _wanted = (level, fmt)
    _applied = False


def console() -> bool:
    """Whether events are written as readable lines (a terminal) rather than JSON."""
    fmt = _wanted[1]
    return fmt == "console" or (fmt == "auto" and sys.stderr.isatty())


@contextmanager
def shown_live(events: frozenset[str]) -> Iterator[None]:
    """Within the block, ``events`` are shown by a live display and not written as lines:
    an event is never shown twice."""
    global _live  # noqa: PLW0603 - logging is process-wide by nature
    previous, _live = _live, _live | events
    try:
        yield
    finally:
        _live = previous


# Where log lines go while a live display owns the terminal (None: stderr).
_line_sink: Callable[[str], None] | None = None
# Events a live display takes over, each with the function that shows it instead.
_shown_by: tuple[tuple[frozenset[str], Callable[[EventDict], None]], ...] = ()


@contextmanager
def shown_by(events: frozenset[str], show: Callable[[EventDict], None]) -> Iterator[None]:
    """Within the block, ``events`` go to ``show`` (a terminal display that words them for
    a person) instead of being written as log lines: each is still said exactly once."""
    global _shown_by  # noqa: PLW0603 - logging is process-wide by nature
    previous, _shown_by = _shown_by, (*_shown_by, (events, show))
    try:
        yield
    finally:
        _shown_by = previous


@contextmanager
def lines_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Within the block, log lines go to ``sink`` (a live display, which prints them above
    its live rows) instead of straight to stderr, where they would tear its drawing."""
    global _line_sink  # noqa: PLW0603 - logging is process-wide by nature
    previous, _line_sink = _line_sink, sink
    try:
        yield
    finally:
        _line_sink = previous


def _to_display(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for events, show in _shown_by:
        if event_dict.get("event") in events:
            show(dict(event_dict))
            import structlog  # noqa: PLC0415 - already imported by _apply

            raise structlog.DropEvent
    return event_dict


def _not_shown_live(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    if event_dict.get("event") in _live:
        import structlog  # noqa: PLC0415 - already imported by _apply

        raise structlog.DropEvent
    return event_dict


class _Readable:
    """The console renderer, with multi-line text (a build's last log lines, a compiler's
    error) shown as indented lines under the event instead of one ``'a\\nb'`` repr."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> str:
        blocks = {k: v for k, v in event_dict.items()
                  if isinstance(v, str) and "\n" in v.strip() and k != "event"}
        for key in blocks:
            del event_dict[key]
        line: str = self._inner(logger, method, event_dict)
        for key, text in blocks.items():
            line += f"\n    {key}:" + "".join(f"\n      {row}" for row in
                                               text.strip().splitlines())
        return line


def _redact_urls(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """No URL's user or password reaches a log line, whatever field it came in."""
    for name, value in event_dict.items():
        if isinstance(value, str) and "@" in value and "://" in value:
            event_dict[name] = redacted(value)
    return event_dict


def _apply() -> None:
    """Configure structlog as ``configure`` last asked, once per ``configure``."""
    global _applied, _generation  # noqa: PLW0603 - logging is process-wide by nature
    if _applied:
        return
    import logging  # noqa: PLC0415 - deferred on purpose (module docstring)

    import structlog  # noqa: PLC0415 - deferred on purpose (module docstring)

    level = _wanted[0]
    json_logs = not console()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs
        else _Readable(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    )
    structlog.configure(
        processors=[
            _not_shown_live,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_urls,
            _to_display,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _applied = True
    _generation += 1


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
           "critical": 50, "fatal": 50}


def _drop(*_args: Any, **_fields: Any) -> None:
    return None


class _Logger:
    """Stands for ``structlog.get_logger(name)``; an event below the wanted level is
    dropped here, without importing structlog.

    The structlog logger is made once per setup (``_generation``), not once per event:
    the server writes an access line per request, and a fresh lazy proxy each time was
    a tenth of a request's Python time."""

    __slots__ = ("_bound", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: tuple[int, Any] = (-1, None)

    def __getattr__(self, attribute: str) -> Any:
        if _LEVELS.get(attribute, 100) < _LEVELS[_wanted[0]]:
            return _drop
        _apply()
        generation, bound = self._bound
        if generation != _generation:
            import structlog  # noqa: PLC0415 - deferred on purpose (module docstring)

            bound = structlog.get_logger(self._name).bind()
            self._bound = (_generation, bound)
        return getattr(bound, attribute)


def get(name: str) -> FilteringBoundLogger:
    """The logger for ``name`` (``log.info("driver.built", artifact=..., seconds=...)``)."""
    return cast("FilteringBoundLogger", _Logger(name))


@contextmanager
def captured() -> Iterator[list[EventDict]]:
    """Every event written inside the block, as dicts (for tests): the setup is applied
    first, so the capture is not replaced by it at the first event."""
    _apply()
    from structlog.testing import capture_logs  # noqa: PLC0415 - only tests capture

    with capture_logs() as events:
        yield events
