"""What the terminal a command writes to wants: colour only on a terminal, never when
``NO_COLOR`` is set (no-color.org) or ``TERM`` is ``dumb``; ``FORCE_COLOR`` forces it."""

from __future__ import annotations

import os
from typing import TextIO


def colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"
