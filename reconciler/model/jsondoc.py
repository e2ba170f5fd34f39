"""JSON from outside, bounded: a document nested deeper than ``MAX_DEPTH`` is refused before
the parser sees it, since ``json.loads`` recurses once per level and a document 100,000
deep would raise ``RecursionError`` (a bug's exception, not a bad input's).

The depth is counted on the bytes with every string taken out, so brackets inside strings
do not count; one regular-expression pass and one over the brackets, both linear.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.errors import JsonError

MAX_DEPTH = 64  # an index is 3 deep; nothing we read needs more than a few levels
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def depth(body: bytes) -> int:
    """How deep ``body``'s arrays and objects nest (brackets in strings not counted)."""
    deepest = level = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if match[0] in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``body`` (UTF-8 JSON) as Python values; ``JsonError`` if it is not JSON or nests
    deeper than ``max_depth``."""
    found = depth(body)
    if found > max_depth:
        raise JsonError(f"nested {found} deep, more than the {max_depth} allowed")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonError(str(exc)) from exc
    except RecursionError as exc:  # a parser deeper than our count: still a bad input
        raise JsonError("nested too deep to parse") from exc
