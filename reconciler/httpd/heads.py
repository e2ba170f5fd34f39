"""Request heads: the request line and header fields, parsed into a typed value.

The stock handler parses header fields with the ``email`` package (a feed parser built for
mail, with policies and defect tracking): a fifth of a request's Python time in a boot
storm. A request head is far simpler, and stricter rules are safer for a server: here a
head is refused with 400 where the stock parser would guess (a field line folded onto the
next, a field name with spaces, two different ``Content-Length`` values: the ways a proxy
and a server come to disagree on where a request ends), 431 for too many or too long field
lines, 505 for HTTP/2 and later. A request line without a version (HTTP/0.9) is refused:
no loader speaks it, and its answer would have no status line.

``RequestHeaders`` is an ``email.message.Message`` so the stock handler's type holds, but
``get`` is one dict lookup on the lower-cased name (the first value, as ``Message.get``).
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

from reconciler.errors import HeadError

__all__ = ["HeadError", "RequestHead", "RequestHeaders", "parse", "parse_request_line",
           "read_fields"]

MAX_LINE = 65536  # one field line, as the stock parser allows
MAX_FIELDS = 100
# Fields whose repeats must agree: a disagreement is how request smuggling starts.
_SINGLE = frozenset({"content-length", "host"})
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is allowed in a value
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.1: a field name


class RequestHeaders(email.message.Message):
    """Header fields by case-insensitive name; ``get`` gives the first value."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        self._headers = list(fields)
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    @overload  # type: ignore[override]  # narrower than Message.get, same behaviour
    def get(self, name: str, failobj: None = None) -> str | None: ...
    @overload
    def get(self, name: str, failobj: str) -> str: ...

    def get(self, name: str, failobj: str | None = None) -> str | None:
        return self._first.get(name.lower(), failobj)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str  # "HTTP/1.1"
    version_number: tuple[int, int]
    headers: RequestHeaders

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the answer."""
        tokens = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
        if "close" in tokens:
            return False
        return self.version_number >= (1, 1) or "keep-alive" in tokens


def parse_request_line(line: bytes) -> tuple[str, str, str, tuple[int, int]] | None:
    """``(method, target, version, (major, minor))``; None for an empty line (a client
    that sent nothing); HeadError for anything else that is not ``METHOD target HTTP/x.y``."""
    text = line.decode("iso-8859-1").rstrip("\r\n")
    words = text.split()
    if not words:
        return None
    if len(words) != 3:
        raise HeadError(400, "bad request line: expected METHOD target HTTP/x.y")
    method, target, version = words
    if not version.startswith("HTTP/"):
        raise HeadError(400, "bad request version")
    major, dot, minor = version[5:].partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and len(major) <= 3
            and len(minor) <= 3 and major.isascii() and minor.isascii()):
        raise HeadError(400, "bad request version")
    number = (int(major), int(minor))
    if number >= (2, 0):
        raise HeadError(505, "HTTP version not supported")
    if target.startswith("//"):  # not a scheme-relative URL: a path with extra slashes
        target = "/" + target.lstrip("/")
    return method, target, version, number


def read_fields(readline: Callable[[int], bytes]) -> RequestHeaders:
    """The field lines up to the empty line that ends the head."""
    fields: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    while True:
        raw = readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE:
            raise HeadError(431, "header line too long")
        if raw in (b"\r\n", b"\n", b""):
            return RequestHeaders(fields)
        if len(fields) >= MAX_FIELDS:
            raise HeadError(431, "too many header fields")
        if not raw.isascii():  # nothing we serve or sign uses obs-text; refuse, never guess
            raise HeadError(400, "non-ASCII byte in a header field")
        line = raw.decode("ascii").rstrip("\r\n")
        if _CONTROL.search(line):
            raise HeadError(400, "control character in a header field")
        if line[:1] in (" ", "\t"):
            raise HeadError(400, "folded header line")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HeadError(400, "bad header line: expected Name: value")
        value = value.strip(" \t")
        lower = name.lower()
        if lower in _SINGLE and seen.setdefault(lower, value) != value:
            raise HeadError(400, f"conflicting {name} fields")
        fields.append((name, value))


def parse(line: bytes, readline: Callable[[int], bytes]) -> RequestHead | None:
    """The head whose request line is ``line``, fields read with ``readline``."""
    parsed = parse_request_line(line)
    if parsed is None:
        return None
    method, target, version, number = parsed
    return RequestHead(method, target, version, number, read_fields(readline))
