"""HMAC-SHA256 proofs of a shared secret over a request body, as ``sha256=<hex>``.

One rule for every endpoint that takes signed bodies (the forge webhook, build requests)
and for the client that signs them: the digest is of the raw body bytes, exactly as sent,
and comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def digest(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def header_value(secret: bytes, body: bytes) -> str:
    """What a signed request carries: ``sha256=<hex digest of the body>``."""
    return PREFIX + digest(secret, body)


def matches_hex(secret: bytes, body: bytes, given: str) -> bool:
    """Whether ``given`` (bare hex, any case) is the body's digest."""
    return bool(given) and hmac.compare_digest(given.strip().lower(), digest(secret, body))


def matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex>`` of the body. No secret proves nothing."""
    if not secret or header is None:
        return False
    header = header.strip()
    return header.startswith(PREFIX) and matches_hex(secret, body, header[len(PREFIX):])
