"""What passes between a connection and the site it serves: values, no I/O.

A ``Site`` is what one listening address answers (the driver repository, the push
webhook). The connection parses a request head (``heads``) and asks the site to ``admit``
it: refuse it at once (``Admission.refusal``), or read a body of a given length first, and
answer on the loop thread (cheap, never blocks) or on a worker. ``respond`` turns a
``Request`` into a ``Response``: a status, header fields, and a small body or an open file
to send with ``sendfile``. The connection adds ``Server``, ``Date`` and ``Connection``.
"""

from __future__ import annotations

import http
from dataclasses import dataclass
from typing import Protocol

from reconciler.edges.store.local import OpenFile
from reconciler.httpd.heads import RequestHead

_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}
TEXT = "text/plain; charset=utf-8"


def phrase(status: int) -> str:
    """The reason phrase of ``status`` (empty for a code HTTP does not name)."""
    return _PHRASES.get(status, "")


@dataclass(frozen=True)
class Request:
    head: RequestHead
    client: str  # the peer's address
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """One answer. ``file`` (a store file opened for this request, closed by the
    connection once sent) is sent from ``offset``, ``count`` bytes, after ``body``.
    ``omit_body`` is a HEAD's: the fields say what a GET would get, and nothing follows.
    ``close`` ends the connection after it."""

    status: int
    fields: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    file: OpenFile | None = None
    offset: int = 0
    count: int = 0
    omit_body: bool = False
    close: bool = False


def text(status: int, body: str, *, omit_body: bool = False, close: bool = False,
         fields: tuple[tuple[str, str], ...] = (), content_type: str = TEXT) -> Response:
    """A small answer whose body is ``body`` (a line of text, or a JSON document)."""
    data = body.encode("utf-8")
    return Response(status, (("Content-Type", content_type),
                             ("Content-Length", str(len(data))), *fields),
                    data, omit_body=omit_body, close=close)


BUSY = text(503, "busy, retry shortly\n", close=True, fields=(("Retry-After", "1"),))


@dataclass(frozen=True)
class Admission:
    """What a site wants done with a request head before it answers."""

    refusal: Response | None = None  # answer this now, read nothing more
    body_length: int = 0  # read exactly this many body bytes first (within header_timeout)
    on_loop: bool = False  # answer on the loop thread: cheap and never blocks


class Site(Protocol):
    """What one listening address serves."""

    def admit(self, head: RequestHead) -> Admission: ...

    def respond(self, request: Request) -> Response: ...


def content_length(head: RequestHead, limit: int) -> int | Response:
    """The announced body length, at most ``limit``; or the refusal: 411 without
    ``Content-Length`` (or with ``Transfer-Encoding``), 400 if it is not decimal ASCII
    digits (``²`` is a digit to ``str.isdigit``), 413 beyond ``limit``. A 5000-digit
    number is refused by its length, never converted."""
    value = head.headers.get("Content-Length")
    if head.headers.get("Transfer-Encoding") or value is None:
        return text(411, "Content-Length required\n", close=True)
    if not (value.isascii() and value.isdigit()):
        return text(400, "bad Content-Length\n", close=True)
    digits = value.lstrip("0")
    if len(digits) > len(str(limit)) or int(digits or "0") > limit:
        return text(413, "payload too large\n", close=True)  # the body stays unread
    return int(digits or "0")


class BusySite:
    """The site of a connection over a cap: its request, if one comes soon, gets 503."""

    def admit(self, head: RequestHead) -> Admission:
        return Admission(refusal=BUSY)

    def respond(self, request: Request) -> Response:
        return BUSY
