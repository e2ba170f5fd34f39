"""Shared secrets read from files (build requests, the push webhook).

A secret is read where it is used, so a rotated file counts at once. One that cannot be
read, or is empty, is a configuration error: no retry makes it appear.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ConfigError


def read(path: Path, what: str) -> bytes:
    """The secret in ``path`` without surrounding white space; ConfigError naming ``what``
    (e.g. "the build request secret") if it cannot be read or is empty."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not secret:
        raise ConfigError(f"{what} {path} is empty: put the shared secret in it")
    return secret
