"""One HTTP/1.1 connection, on ``http.server.BaseHTTPRequestHandler``.

The stock handler owns its connection for its whole life (``handle`` loops over requests)
and writes to it as it goes. Here the server owns the loop: it creates one handler per
connection, keeps it parked in epoll while the client is idle, and has it answer one
request at a time (``serve_one``), on the loop thread or a worker (``quick`` says which).
A request is served only once its whole head (request line and headers) has arrived: the
loop thread gathers it without blocking (``gather_head``), so a client that trickles its
request in (slowloris) holds a buffer, never a thread. The handler keeps its ``rfile``
across requests, so bytes read ahead (pipelining) are not lost (``next_request_ready``).

Heads are parsed by ``heads``. What the stock handler writes (status line, headers, a
small body) goes into a buffer, not the socket; ``send_more`` sends it, then the file,
with ``os.sendfile`` from the descriptor opened for the request, without blocking, and
says ``Outcome.SENDING`` when the socket is full: the server calls it again once the
socket is writable.

Responses: ``GET``/``HEAD`` of store files (``paths`` decides which), ``/index.json`` and
``/healthz``; on a build host that takes them, ``POST /v1/build-requests`` (``intake``),
whose body, and no other, is read: at most ``buildrequests.MAX_BODY`` bytes, announced by
``Content-Length``, within ``header_timeout``. Every other method is 405 with ``Allow``.
Access logs are structlog events (``http.access``), written when the last byte is sent;
the stock stderr logging is switched off.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import http.server
import io
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler import __version__, logs
from reconciler.httpd import conditions, heads, paths
from reconciler.httpd.files import OpenFile
from reconciler.model import buildrequests

if TYPE_CHECKING:
    from reconciler.httpd.server import DriverHTTPServer

_log = logs.get("reconciler.httpd")
_ALLOW = "GET, HEAD"
_SENDFILE_CHUNK = 1 << 30
_HEAD_LIMIT = 64 * 1024 + 4096  # the stock parser's line limit, and then some

# Loaders ask for the same few paths again and again; routing is pure, so remember it.
_route = functools.lru_cache(maxsize=4096)(paths.resolve)


def _head_complete(data: bytes | bytearray) -> bool:
    """True once the empty line that ends a request head is in ``data`` (CRLF or LF)."""
    return b"\n\r\n" in data or b"\n\n" in data


class HeadState(enum.Enum):
    """What ``gather_head`` found."""

    READY = "ready"  # a whole head (or EOF, an error, an oversize head): lend to a worker
    PARTIAL = "partial"  # part of a head: keep waiting, under the header deadline


class Outcome(enum.Enum):
    """Where a connection stands after ``serve_one`` or ``send_more``."""

    KEEP = "keep"  # answered; the connection stays open for the next request
    CLOSE = "close"  # answered, or failed: close it
    SENDING = "sending"  # the file is still going out: call send_more when writable


class _Body:
    """The file of a response still being sent (mutable: its progress)."""

    __slots__ = ("file", "offset", "remaining")

    def __init__(self, file: OpenFile, offset: int, remaining: int) -> None:
        self.file = file
        self.offset = offset
        self.remaining = remaining


class _ResponseBuffer(io.BufferedIOBase):
    """``wfile``: what the stock handler writes (status line, headers, small bodies) is
    kept here and sent by ``send_more`` without blocking, so no thread ever waits on a
    client that does not read."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:
        self.pending += data
        return len(data)


class _RequestReader(io.BufferedIOBase):
    """``rfile``: request heads, from one buffer that both the loop thread
    (``fill_nowait``) and the worker (``readline``, ``read_body``) fill. The only bodies
    read are build requests'. Bytes read past a head or body (a pipelined request) stay
    here for the next one."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.pending = bytearray()

    def readable(self) -> bool:
        return True

    def fill_nowait(self) -> int:
        """Append what has arrived, without waiting; 0 at EOF, BlockingIOError if none."""
        data = self.sock.recv(65536, socket.MSG_DONTWAIT)
        self.pending += data
        return len(data)

    def readline(self, size: int | None = -1, /) -> bytes:
        limit = size if size is not None and size > 0 else _HEAD_LIMIT * 16
        pending = self.pending
        while True:
            end = pending.find(b"\n", 0, limit)
            if end >= 0:
                count = end + 1
                break
            if len(pending) >= limit:
                count = limit
                break
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:  # SO_RCVTIMEO ran out
                raise TimeoutError("no request data for io_timeout") from None
            if not data:
                count = len(pending)
                break
            pending += data
        line = bytes(pending[:count])
        del pending[:count]
        return line

    def read_body(self, size: int, deadline: float) -> bytes:
        """Exactly ``size`` bytes (a bounded body), all before ``deadline`` (monotonic):
        a client trickling its body in holds a worker no longer than that and one
        ``io_timeout``."""
        pending = self.pending
        while len(pending) < size:
            if time.monotonic() > deadline:
                raise TimeoutError("request body not received in time")
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:  # SO_RCVTIMEO ran out
                raise TimeoutError("no request data for io_timeout") from None
            if not data:
                raise ConnectionResetError("the client left before its body was sent")
            pending += data
        body = bytes(pending[:size])
        del pending[:size]
        return body


class DriverRequestHandler(http.server.BaseHTTPRequestHandler):
    server: DriverHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = f"falco-reconciler/{__version__}"
    sys_version = ""
    # TCP_NODELAY: a small answer must not wait for the client's delayed ACK (40 ms).
    # Headers and file still share packets: see MSG_MORE in send_more.
    disable_nagle_algorithm = True
    # Nobody speaks HTTP/0.9 any more; answering a garbled request line in it would mean
    # a reply without a status line.
    default_request_version = "HTTP/1.0"

    # No super().__init__: the stock one serves the whole connection at once; here the
    # server drives requests one by one (module docstring), so only setup() runs.
    def __init__(
        self, request: socket.socket, client_address: Any, server: DriverHTTPServer
    ) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        self._io_timeout = server.config.io_timeout
        self.setup()
        # Reads in a worker (a build request's body) block, with the kernel's timeout;
        # responses are sent without blocking (send_more).
        self.connection.settimeout(None)
        seconds = int(self._io_timeout)
        timeval = struct.pack("ll", seconds, int((self._io_timeout - seconds) * 1_000_000))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        self.raw_requestline = b""
        self._status = 0
        self._sent = 0
        self._started = 0.0
        self._body: _Body | None = None

    # -- driven by the server -------------------------------------------------------

    def serve_one(self) -> Outcome:
        """Read and answer one request. A file goes out without blocking: what does not
        fit the socket's buffer now is left for ``send_more`` (``Outcome.SENDING``)."""
        self._started = time.monotonic()
        self.raw_requestline = b""
        self.command = ""
        self.path = ""
        self._status = 0
        self._sent = 0
        self.close_connection = True
        try:
            self.handle_one_request()
        except OSError as exc:  # reset, broken pipe: the client left
            self._lost(exc)
        return self.send_more()

    def send_more(self) -> Outcome:
        """Send what the socket takes now of the file being sent; the descriptor opened
        for the request is used to the end, never the name."""
        body = self._body
        pending = self._out.pending
        try:
            if pending:
                # MSG_MORE: a head waits for the file's first bytes, to leave in the same
                # packets (nginx's tcp_nopush); the file's last bytes push it all out.
                flags = socket.MSG_DONTWAIT | (socket.MSG_MORE if body else 0)
                while pending:
                    del pending[:self.connection.send(pending, flags)]
            if body is not None:
                self._send_body(body)
        except BlockingIOError:
            return Outcome.SENDING
        except OSError as exc:
            self._lost(exc)
        self._end_body()
        pending.clear()
        if body is not None and not self.close_connection:
            self.connection.setblocking(True)  # a file made it non-blocking; reads block
        return self._answered()

    def _send_body(self, body: _Body) -> None:
        out = self.connection.fileno()
        while body.remaining > 0:
            sent = os.sendfile(out, body.file.fd, body.offset,
                               min(body.remaining, _SENDFILE_CHUNK))
            if sent == 0:  # the file shrank under us (truncated in place)
                self.close_connection = True
                break
            body.offset += sent
            body.remaining -= sent
            self._sent += sent

    def _answered(self) -> Outcome:
        if self.raw_requestline:
            _log.info(
                "http.access",
                method=self.command or "-",
                path=self.path or self.requestline[:200],
                status=self._status,
                bytes=self._sent,
                duration_ms=round((time.monotonic() - self._started) * 1000, 3),
                client=self._client(),
            )
        return Outcome.CLOSE if self.close_connection else Outcome.KEEP

    def _lost(self, exc: OSError) -> None:
        self.close_connection = True
        _log.debug("http.connection_error", client=self._client(), error=str(exc))

    def _end_body(self) -> None:
        if self._body is not None:
            self._body.file.close()
            self._body = None

    def setup(self) -> None:
        # Not the stock setup: its rfile and wfile are file objects over the socket; ours
        # share a buffer with the loop thread (rfile) and never block (wfile).
        self.connection = self.request
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self._reader = _RequestReader(self.connection)
        self.rfile = self._reader
        self._out = _ResponseBuffer()
        self.wfile = self._out

    def finish(self) -> None:
        self._reader.pending.clear()
        self._out.pending.clear()

    def quick(self) -> bool:
        """Whether the request waiting here can be answered without blocking, on the
        loop thread: a whole head, for a ``GET`` or ``HEAD`` of a store file or of
        ``/healthz``. Anything else (``/index.json``, a build request, a malformed or
        partial head, EOF) goes to a worker."""
        pending = self._reader.pending
        if not _head_complete(pending):
            return False
        try:
            line = heads.parse_request_line(bytes(pending[:pending.find(b"\n") + 1]))
        except heads.HeadError:
            return False  # a worker answers the error
        if line is None or line[0] not in ("GET", "HEAD"):
            return False
        kind = _route(line[1], self.server.config.host_arch).kind
        return kind is paths.RouteKind.FILE or kind is paths.RouteKind.HEALTH

    def gather_head(self) -> HeadState:
        """Called by the loop thread when the socket is readable: take what has
        arrived, without blocking, and say whether a whole request head is there."""
        try:
            if not self._reader.fill_nowait():
                return HeadState.READY  # EOF: the worker sees it and closes
        except BlockingIOError:
            return HeadState.PARTIAL
        except OSError:
            return HeadState.READY  # the worker meets the error and closes
        pending = self._reader.pending
        if _head_complete(pending) or len(pending) > _HEAD_LIMIT:
            return HeadState.READY
        return HeadState.PARTIAL

    @property
    def has_partial_head(self) -> bool:
        return bool(self._reader.pending)

    def next_request_ready(self) -> bool:
        """After a response: True if a whole next request head is already here
        (pipelining). Only what was read ahead counts: bytes still in the socket wake
        epoll once the connection is parked again, so no system call is made here."""
        pending = self._reader.pending
        return _head_complete(pending) or len(pending) > _HEAD_LIMIT

    def close(self) -> None:
        self._end_body()
        with contextlib.suppress(OSError):
            self.finish()
        with contextlib.suppress(OSError):
            self.connection.close()

    def abort(self) -> None:
        """Break a request in progress (shutdown): the worker's next send fails."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client(self) -> str:
        return str(self.client_address[0]) if self.client_address else "-"

    # -- methods --------------------------------------------------------------------

    def do_GET(self) -> None:
        self._drop_if_body()
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._drop_if_body()
        self._respond(head=True)

    def do_POST(self) -> None:
        route = _route(self.path, self.server.config.host_arch)
        if route.kind is paths.RouteKind.BUILD_REQUESTS and self.server.intake is not None:
            self._build_request()
        else:
            self._method_not_allowed()

    def _build_request(self) -> None:
        assert self.server.intake is not None
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self.close_connection = True
            self._simple(411, b"Content-Length required\n")
            return
        if not length.isdigit():
            self.close_connection = True
            self._simple(400, b"bad Content-Length\n")
            return
        if int(length) > buildrequests.MAX_BODY:
            self.close_connection = True  # the body stays unread
            self._simple(413, b"payload too large\n")
            return
        if (self.headers.get("Expect") or "").lower() == "100-continue" \
                and self.request_version != "HTTP/1.0":
            self.send_response_only(100)  # the client waits for this before its body
            self.end_headers()
            self.connection.sendall(self._out.pending)
            self._out.pending.clear()
        try:
            body = self._reader.read_body(
                int(length), time.monotonic() + self.server.config.header_timeout)
        except TimeoutError:
            self.close_connection = True
            self._simple(408, b"request body not received in time\n")
            return
        answer = self.server.intake.handle(
            self._client(), body, self.headers.get(buildrequests.SIGNATURE_HEADER))
        self._simple(answer.status, answer.body, content_type=answer.content_type,
                     extra=answer.headers)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler looks up do_<METHOD>; any method but GET/HEAD is 405.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _drop_if_body(self) -> None:
        # We never read request bodies; unread body bytes would be parsed as the next
        # request, so such a connection ends with this response.
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True

    def _method_not_allowed(self) -> None:
        self._drop_if_body()
        self._simple(405, b"method not allowed\n", extra={"Allow": _ALLOW})

    # -- responses ------------------------------------------------------------------

    def _respond(self, *, head: bool) -> None:
        route = _route(self.path, self.server.config.host_arch)
        if route.kind is paths.RouteKind.FILE:
            opened = self._open(route)
            if opened is None:
                self._simple(404, b"not found\n", head=head)
                return
            try:
                self._send_file(opened, route.sidecar, head=head)
            finally:
                if self._body is None or self._body.file is not opened:
                    opened.close()
        elif route.kind is paths.RouteKind.INDEX:
            body = self.server.files.index_json()
            self._bytes(body, "application/json", head=head)
        elif route.kind is paths.RouteKind.HEALTH:
            if self.server.files.readable():
                self._simple(200, b"ok\n", head=head)
            else:
                self._simple(503, b"store not readable\n", head=head)
        elif route.kind is paths.RouteKind.BUILD_REQUESTS and self.server.intake is not None:
            self._simple(405, b"method not allowed\n", head=head, extra={"Allow": "POST"})
        elif route.kind is paths.RouteKind.BAD_REQUEST:
            _log.debug("http.refused", path=self.path[:200], reason=route.reason)
            self.close_connection = True
            self._simple(400, b"bad request\n", head=head)
        else:
            _log.debug("http.refused", path=self.path[:200], reason=route.reason)
            self._simple(404, b"not found\n", head=head)

    def _open(self, route: paths.Route) -> OpenFile | None:
        files = self.server.files
        opener = files.open_sidecar if route.sidecar else files.open_artifact
        for relpath in route.candidates:
            opened = opener(relpath)
            if opened is not None:
                return opened
        return None

    def _send_file(self, opened: OpenFile, sidecar: bool, *, head: bool) -> None:
        etag = f'"{opened.sha256}.sha256"' if sidecar else f'"{opened.sha256}"'
        last_modified = conditions.http_date(opened.mtime)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            fresh = conditions.none_match(if_none_match, etag)
        else:
            since = self.headers.get("If-Modified-Since")
            fresh = since is not None and not conditions.modified_since(since, opened.mtime)
        if fresh:
            self._start(304, validators)
            self.end_headers()
            return
        size = opened.size
        wanted = None
        if conditions.range_allowed(self.headers.get("If-Range"), etag, last_modified):
            wanted = conditions.parse_range(self.headers.get("Range"), size)
        if wanted is conditions.UNSATISFIABLE:
            self._simple(416, b"range not satisfiable\n", head=head,
                         extra={"Content-Range": f"bytes */{size}", **validators})
            return
        content_type = "text/plain; charset=utf-8" if sidecar else "application/octet-stream"
        headers = {"Content-Type": content_type, "Accept-Ranges": "bytes", **validators}
        if isinstance(wanted, conditions.ByteRange):
            self._start(206, {**headers, "Content-Range": wanted.content_range(size),
                              "Content-Length": str(wanted.length)})
            offset, count = wanted.start, wanted.length
        else:
            self._start(200, {**headers, "Content-Length": str(size)})
            offset, count = 0, size
        self.end_headers()
        if head or count == 0:
            return
        self._body = _Body(opened, offset, count)
        # Non-blocking from here: a worker thread sleeping in sendfile until a reader
        # drains its socket cost a context switch per buffer-full; the server's loop
        # sends the rest as the socket becomes writable.
        self.connection.setblocking(False)

    def _bytes(self, body: bytes, content_type: str, *, head: bool) -> None:
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        inm = self.headers.get("If-None-Match")
        if inm is not None and conditions.none_match(inm, etag):
            self._start(304, {"ETag": etag})
            self.end_headers()
            return
        self._simple(200, body, head=head, content_type=content_type,
                     extra={"ETag": etag, "Cache-Control": "no-cache"})

    def _simple(
        self, code: int, body: bytes, *, head: bool = False,
        content_type: str = "text/plain; charset=utf-8", extra: dict[str, str] | None = None,
    ) -> None:
        self._start(code, {"Content-Type": content_type, "Content-Length": str(len(body)),
                           **(extra or {})})
        self.end_headers()
        if not head:
            self.wfile.write(body)
            self._sent += len(body)

    def _start(self, code: int, headers: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":  # it asked for keep-alive, and gets it
            self.send_header("Connection", "keep-alive")

    # -- BaseHTTPRequestHandler hooks -------------------------------------------------

    def parse_request(self) -> bool:
        """The request head, by ``heads`` (stricter and cheaper than the stock parser's
        ``email`` one); False once an error was answered or for an empty request."""
        self.close_connection = True
        self.command = ""
        self.request_version = self.default_request_version
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            head = heads.parse(self.raw_requestline, self.rfile.readline)
        except heads.HeadError as exc:
            self.send_error(exc.status, exc.reason)
            return False
        if head is None:
            return False
        self.command, self.path, self.request_version = head.method, head.target, head.version
        self.headers = head.headers
        self.close_connection = not head.keep_alive
        return True

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header (``conditions.http_date`` formats each second once)."""
        return conditions.http_date(time.time() if timestamp is None else timestamp)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors found by the stock parser: plain text, and close."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("error",))[0]
        body = f"{code} {reason}\n".encode("ascii", "replace")
        self._simple(code, body, head=self.command == "HEAD")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._status = int(code) if isinstance(code, int) else 0

    def log_error(self, format: str, *args: Any) -> None:
        _log.debug("http.error", client=self._client(), detail=format % args)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("http.message", client=self._client(), detail=format % args)
