"""A small JSON record under the state dir: written whole and atomically
(``edges.atomic``), read back leniently (missing or unreadable: the caller's empty value,
with a warning for the unreadable), as the retention and rollout ledgers are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reconciler import logs
from reconciler.edges import atomic

log = logs.get(__name__)
T = TypeVar("T")


def read(target: Path, parse: Callable[[Any], T], empty: Callable[[], T], event: str) -> T:
    """``parse`` of the file's JSON; ``empty()`` when it is missing or does not parse
    (``parse`` raises KeyError, TypeError, ValueError or AttributeError then)."""
    try:
        return parse(json.loads(target.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning(event, path=str(target), error=str(exc))
        return empty()


def write(target: Path, doc: Any) -> None:
    atomic.write_bytes(target, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
