"""Small files read whole, but never more than their kind can be: a signing key, a
certificate, another host's facts, a signed index.

``read`` asks for one byte more than the limit, so a file of exactly the limit is
accepted and anything bigger (a wrong path, a log, ``/dev/zero``) costs at most the limit
before it is refused. Each caller names what the file should be and the error its own
callers understand; the sentence names the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def read(path: Path, limit: int, what: str, error: Callable[[str], Exception], *,
         expected: str = "") -> bytes:
    """The bytes of ``path``; ``error`` saying "cannot read <what> <path>: <reason>", or
    "<what> <path> is larger than <limit> bytes[: <expected>]"."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        said = f"{what} {path} is larger than {limit} bytes"
        raise error(f"{said}: {expected}" if expected else said)
    return data
