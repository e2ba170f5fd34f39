"""The driver repository's answers: request head + route + context -> ``Response``.

No sockets and no threads here: ``respond`` is a function of the request, the route
``paths`` gave its target, and a ``Context`` that opens store files and takes build
requests. What goes out, and when, is the connection's business (``connection``).

Answers: ``GET``/``HEAD`` of store files (with ``ETag``, ``Last-Modified``, ``If-None-Match``,
``If-Modified-Since``, ``If-Range`` and one ``Range``: ``conditions``), ``/index.json`` and
``/healthz``; on a build host that takes them, ``POST /v1/build-requests`` (``intake``),
whose body, and no other, is read: at most ``buildrequests.MAX_BODY`` bytes, announced by
``Content-Length``. Every other method is 405 with ``Allow``. A request that carries a body
we do not read ends its connection, so the body is never parsed as the next request.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Protocol

from reconciler import logs
from reconciler.edges.store.local import OpenFile
from reconciler.errors import StoreBusy
from reconciler.httpd import conditions, paths
from reconciler.httpd.heads import RequestHead
from reconciler.httpd.messages import (
    BUSY,
    Admission,
    Request,
    Response,
    content_length,
    text,
)
from reconciler.httpd.throttle import Throttled
from reconciler.model import buildrequests

_log = logs.get("reconciler.httpd")
_busy_log = Throttled()
_ALLOW = (("Allow", "GET, HEAD"),)
_OCTETS = "application/octet-stream"
_CHECKSUM = "text/plain; charset=utf-8"

# Loaders ask for the same few paths again and again; routing is pure, so remember it.
route = functools.lru_cache(maxsize=4096)(paths.resolve)


class Files(Protocol):
    """The store as the server sees it (``files.StoreFiles``)."""

    def open_artifact(self, relpath: str) -> OpenFile | None: ...
    def open_sidecar(self, relpath: str) -> OpenFile | None: ...
    def readable(self) -> bool: ...
    def index_json(self) -> bytes: ...


class BuildRequests(Protocol):
    """Takes one signed build request (``intake.Intake``)."""

    def handle(self, client: str, body: bytes, signature: str | None) -> Response: ...


@dataclass(frozen=True)
class Context:
    files: Files
    host_arch: str
    intake: BuildRequests | None = None


def _carries_body(head: RequestHead) -> bool:
    return bool(head.headers.get("Transfer-Encoding")) or \
        head.headers.get("Content-Length", "0") != "0"


def admit(head: RequestHead, ctx: Context) -> Admission:
    """What to do before answering: read a build request's body; answer a GET or HEAD
    of a store file or ``/healthz`` on the loop (it never blocks); the rest on a worker."""
    kind = route(head.target, ctx.host_arch).kind
    if head.method == "POST" and kind is paths.RouteKind.BUILD_REQUESTS and ctx.intake:
        length = content_length(head, buildrequests.MAX_BODY)
        if isinstance(length, Response):
            return Admission(refusal=length)
        return Admission(body_length=length)
    if head.method in ("GET", "HEAD"):
        quick = kind is paths.RouteKind.FILE or kind is paths.RouteKind.HEALTH
        return Admission(on_loop=quick)
    return Admission(on_loop=True)  # 405, nothing to look up


def respond(  # noqa: PLR0911 - one answer per route
        request: Request, where: paths.Route, ctx: Context) -> Response:
    head = request.head
    if head.method == "POST" and where.kind is paths.RouteKind.BUILD_REQUESTS and ctx.intake:
        return ctx.intake.handle(request.client, request.body,
                                 head.headers.get(buildrequests.SIGNATURE_HEADER))
    close = _carries_body(head)
    if head.method not in ("GET", "HEAD"):
        return text(405, "method not allowed\n", close=close, fields=_ALLOW)
    omit = head.method == "HEAD"
    try:
        if where.kind is paths.RouteKind.FILE:
            return _file(head, where, ctx.files, omit=omit, close=close)
        if where.kind is paths.RouteKind.INDEX:
            return _document(head, ctx.files.index_json(), omit=omit, close=close)
    except StoreBusy as exc:
        # Out of descriptors: "later", never "not found" and never a shorter index.
        _busy_log.warning("http.store_busy", error=str(exc))
        return BUSY
    if where.kind is paths.RouteKind.HEALTH:
        if ctx.files.readable():
            return text(200, "ok\n", omit_body=omit, close=close)
        return text(503, "store not readable\n", omit_body=omit, close=close)
    if where.kind is paths.RouteKind.BUILD_REQUESTS and ctx.intake is not None:
        return text(405, "method not allowed\n", omit_body=omit, close=close,
                    fields=(("Allow", "POST"),))
    _log.debug("http.refused", path=head.target[:200], reason=where.reason)
    if where.kind is paths.RouteKind.BAD_REQUEST:
        return text(400, "bad request\n", omit_body=omit, close=True)
    return text(404, "not found\n", omit_body=omit, close=close)


def _open(where: paths.Route, files: Files) -> OpenFile | None:
    opener = files.open_sidecar if where.sidecar else files.open_artifact
    for relpath in where.candidates:
        opened = opener(relpath)
        if opened is not None:
            return opened
    return None


def _file(head: RequestHead, where: paths.Route, files: Files, *, omit: bool,
          close: bool) -> Response:
    opened = _open(where, files)
    if opened is None:
        return text(404, "not found\n", omit_body=omit, close=close)
    try:
        response = _file_response(head, opened, where.sidecar, omit=omit, close=close)
    except BaseException:
        opened.close()
        raise
    if response.file is None:
        opened.close()
    return response


def _file_response(head: RequestHead, opened: OpenFile, sidecar: bool, *, omit: bool,
                   close: bool) -> Response:
    etag = f'"{opened.sha256}.sha256"' if sidecar else f'"{opened.sha256}"'
    last_modified = conditions.http_date(opened.mtime)
    validators = (("ETag", etag), ("Last-Modified", last_modified))
    if_none_match = head.headers.get("If-None-Match")
    if if_none_match is not None:
        fresh = conditions.none_match(if_none_match, etag)
    else:
        since = head.headers.get("If-Modified-Since")
        fresh = since is not None and not conditions.modified_since(since, opened.mtime)
    if fresh:
        return Response(304, validators, close=close)
    size = opened.size
    wanted = None
    if conditions.range_allowed(head.headers.get("If-Range"), etag, last_modified):
        wanted = conditions.parse_range(head.headers.get("Range"), size)
    if wanted is conditions.UNSATISFIABLE:
        return text(416, "range not satisfiable\n", omit_body=omit, close=close,
                    fields=(("Content-Range", f"bytes */{size}"), *validators))
    fields: tuple[tuple[str, str], ...] = (
        ("Content-Type", _CHECKSUM if sidecar else _OCTETS), ("Accept-Ranges", "bytes"),
        *validators)
    if isinstance(wanted, conditions.ByteRange):
        status, offset, count = 206, wanted.start, wanted.length
        fields = (*fields, ("Content-Range", wanted.content_range(size)))
    else:
        status, offset, count = 200, 0, size
    fields = (*fields, ("Content-Length", str(count)))
    if omit or count == 0:
        return Response(status, fields, omit_body=omit, close=close)
    return Response(status, fields, file=opened, offset=offset, count=count, close=close)


def _document(head: RequestHead, body: bytes, *, omit: bool, close: bool) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest() + '"'
    inm = head.headers.get("If-None-Match")
    if inm is not None and conditions.none_match(inm, etag):
        return Response(304, (("ETag", etag),), close=close)
    return Response(200, (("Content-Type", "application/json"),
                          ("Content-Length", str(len(body))), ("ETag", etag),
                          ("Cache-Control", "no-cache")), body, omit_body=omit, close=close)


class DriverSite:
    """The driver repository as a ``messages.Site``: ``admit`` and ``respond`` above."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def admit(self, head: RequestHead) -> Admission:
        return admit(head, self.ctx)

    def respond(self, request: Request) -> Response:
        return respond(request, route(request.head.target, self.ctx.host_arch), self.ctx)
