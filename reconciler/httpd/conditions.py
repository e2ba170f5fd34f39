"""HTTP validators and byte ranges (RFC 9110 13-14), as pure functions over header values.

Only what a resumed download and a cache need: ``If-None-Match`` (weak comparison, ``*``),
``If-Modified-Since`` (when there is no ``If-None-Match``), ``If-Range`` and a single
``bytes=`` range. A request for several ranges is answered with the whole file (200),
which RFC 9110 14.2 allows; it spares us ``multipart/byteranges``. A malformed ``Range``
is ignored the same way.
"""

from __future__ import annotations

import email.utils
import enum
import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as in ``Content-Range``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(enum.Enum):
    """The range lies past the end of the file: 416."""

    RANGE = "unsatisfiable"


UNSATISFIABLE = Unsatisfiable.RANGE


def _int(text: str) -> int | None:
    text = text.strip()
    # A position in a file fits in 18 digits; a longer number is malformed, never
    # converted (int() refuses 4300+ digits with an exception, and costs time before).
    return int(text) if text.isdigit() and text.isascii() and len(text) <= 18 else None


def parse_range(  # noqa: PLR0911 - one early answer per rule of RFC 9110 14.1
    value: str | None, size: int
) -> ByteRange | Unsatisfiable | None:
    """The one range to send, UNSATISFIABLE (416), or None to send the whole file."""
    if not value:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    if not first.strip():  # suffix range: the last N bytes
        count = _int(last)
        if count is None:
            return None
        if count == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - count), size - 1)
    start = _int(first)
    end = _int(last) if last.strip() else start
    if start is None or end is None or end < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, size - 1 if not last.strip() else min(end, size - 1))


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def none_match(value: str, etag: str) -> bool:
    """``If-None-Match`` matches (weak comparison): the client's copy is current."""
    opaque = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == opaque for t in _tags(value))


def modified_since(value: str, mtime: float) -> bool:
    """False when ``If-Modified-Since`` proves the client's copy is current."""
    try:
        since = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return True
    if since.tzinfo is None:
        return True
    return int(mtime) > since.timestamp()


def range_allowed(if_range: str | None, etag: str, last_modified: str) -> bool:
    """``If-Range``: honour ``Range`` only if the client's validator is still current
    (strong comparison: a weak ETag never matches)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag and not etag.startswith("W/")
    return value == last_modified


def http_date(timestamp: float) -> str:
    """IMF-fixdate of ``timestamp`` (whole seconds, as HTTP dates are)."""
    return _http_date(int(timestamp))


# Each second's Date and the same few files' Last-Modified, over and over: formatting
# is most of the cost.
@functools.lru_cache(maxsize=1024)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)
