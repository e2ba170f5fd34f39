"""Structured logs: one event name and key/value fields, JSON unless on a terminal.

Logs go to stderr, so stdout stays clean for ``--json`` output; the stream is looked up
at each write, so a replaced ``sys.stderr`` (tests, daemons re-opening it) is followed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


class _Stderr:
    """A file that is always the current ``sys.stderr``."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto") -> None:
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    json_logs = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = True


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
