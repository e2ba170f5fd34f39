"""One HTTP/1.1 connection as a state machine: bytes in, a ``Site`` asked, bytes out.

Only the loop thread calls a connection, and no call ever blocks: ``readable`` takes what
has arrived, ``writable`` sends what the socket takes now. Each returns ``Next``, what
the loop must wait for: more bytes (``READ``, until ``deadline``), room in the socket
(``WRITE``), a worker to answer the request (``WORK``: the loop hands ``pending`` to a
worker and calls ``worked`` with its response), or the end (``CLOSE``).

A request is answered only once its whole head has arrived (``heads`` parses it), and
a body once all of it has: a client that trickles its request in holds a buffer, never a
thread, and only until ``header_timeout`` after its first byte (a body has as long again
after its head). A client that stops reading its answer holds its socket until
``io_timeout`` passes without progress. Bytes read past one request (pipelining) stay for
the next. A file goes out with ``os.sendfile`` from the descriptor the site opened, never
by name; the head waits for the file's first bytes (``MSG_MORE``, nginx's tcp_nopush).

Access logs are structured events (``http.access``), written when the last byte is sent.
"""

from __future__ import annotations

import contextlib
import enum
import io
import os
import socket
import time

from reconciler import __version__, logs
from reconciler.edges.store.local import OpenFile
from reconciler.httpd import clients, conditions, heads
from reconciler.httpd.config import ServerConfig
from reconciler.httpd.messages import Request, Response, Site, phrase, text

_log = logs.get("reconciler.httpd")
SERVER = f"falco-reconciler/{__version__}"
HEAD_LIMIT = 64 * 1024 + 4096  # one field line as the stock parser allows, and then some
_SENDFILE_CHUNK = 1 << 30
_RECV = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Next(enum.Enum):
    """What the loop waits for next on a connection."""

    READ = "read"
    WRITE = "write"
    WORK = "work"
    CLOSE = "close"


class Phase(enum.Enum):
    IDLE = "idle"  # between requests
    HEAD = "head"  # part of a head is here
    BODY = "body"  # a head is here, its body is arriving
    WORKING = "working"  # a worker answers it
    SENDING = "sending"  # the answer is going out


def head_end(data: bytes | bytearray) -> int:
    """The length of the request head at the start of ``data`` (up to and including the
    empty line that ends it, CRLF or bare LF), or -1 if it has not ended yet."""
    crlf, lf = data.find(b"\n\r\n"), data.find(b"\n\n")
    if crlf < 0:
        return lf + 2 if lf >= 0 else -1
    return crlf + 3 if lf < 0 or crlf < lf else lf + 2


def parse_head(data: bytes) -> heads.RequestHead | None:
    """The head in ``data`` (whole, as ``head_end`` cut it); HeadError if refused."""
    reader = io.BytesIO(data)
    line = reader.readline(heads.MAX_LINE + 1)
    if len(line) > heads.MAX_LINE:
        raise heads.HeadError(414, "request line too long")
    return heads.parse(line, reader.readline)


class Connection:
    __slots__ = ("_body_length", "_close_after", "_file", "_head", "_in", "_line",
                 "_offset", "_out", "_remaining", "_sent", "_started", "_status", "client",
                 "config", "deadline", "fd", "group", "on_loop", "pending", "phase", "site",
                 "sock", "timed")

    def __init__(self, sock: socket.socket, client: str, site: Site,
                 config: ServerConfig, group: str | None = None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.client = client
        # what the per-client caps count it under (the loop's accept knows it already)
        self.group = clients.group(client) if group is None else group
        self.site = site
        self.config = config
        self.phase = Phase.IDLE
        self.deadline = time.monotonic() + config.idle_timeout
        self.timed: tuple[float, float] | None = None  # the loop's record of its timer
        self.pending: Request | None = None  # what a worker is to answer
        self.on_loop = False
        self._in = bytearray()
        self._out = bytearray()
        self._head: heads.RequestHead | None = None
        self._line = ""
        self._body_length = 0
        self._file: OpenFile | None = None
        self._offset = 0
        self._remaining = 0
        self._close_after = False
        self._status = 0
        self._sent = 0
        self._started = 0.0
        sock.setblocking(False)
        # TCP_NODELAY: a small answer must not wait for the client's delayed ACK (40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)

    @property
    def buffered(self) -> int:
        """Bytes of requests held (the loop bounds their sum)."""
        return len(self._in)

    @property
    def timeout(self) -> float:
        """The length of the wait ``deadline`` ends (the loop orders timers by it)."""
        if self.phase is Phase.IDLE:
            return self.config.idle_timeout
        if self.phase is Phase.SENDING:
            return self.config.io_timeout
        return self.config.header_timeout

    # -- driven by the loop -----------------------------------------------------------

    def readable(self) -> Next:
        try:
            data = self.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return Next.READ
        except OSError:
            return Next.CLOSE
        if not data:
            return Next.CLOSE
        self._in += data
        return self._advance()

    def writable(self) -> Next:
        out = self._out
        try:
            if out:
                flags = socket.MSG_DONTWAIT | (socket.MSG_MORE if self._remaining else 0)
                while out:
                    del out[:self.sock.send(out, flags)]
            while self._remaining > 0:
                assert self._file is not None
                sent = os.sendfile(self.fd, self._file.fd, self._offset,
                                   min(self._remaining, _SENDFILE_CHUNK))
                if sent == 0:  # the file shrank under us (truncated in place)
                    self._close_after = True
                    break
                self._offset += sent
                self._remaining -= sent
                self._sent += sent
        except (BlockingIOError, InterruptedError):
            self.deadline = time.monotonic() + self.config.io_timeout
            return Next.WRITE
        except OSError as exc:
            self._close_after = True
            _log.debug("http.connection_error", client=self.client, error=str(exc))
        self._answered()
        if self._close_after:
            return Next.CLOSE
        self.phase = Phase.IDLE
        self.deadline = time.monotonic() + self.config.idle_timeout
        return self._advance()

    def worked(self, response: Response) -> Next:
        """A worker's answer to ``pending``: send it."""
        self.pending = None
        return self._answer(response)

    def expired(self) -> None:
        """``deadline`` passed: a body that did not arrive in time gets 408 (best effort,
        never waiting); a partial head, an idle keep-alive or a stalled reader nothing."""
        if self.phase is Phase.BODY:
            with contextlib.suppress(OSError):
                self.sock.send(self._serialize(
                    text(408, "request body not received in time\n", close=True)),
                    socket.MSG_DONTWAIT)
        elif self.phase is Phase.SENDING:
            _log.debug("http.send_stalled", client=self.client)

    def close(self) -> None:
        self._end_file()
        self._in = bytearray()  # the buffers go with the connection, whoever holds it
        self._out = bytearray()
        with contextlib.suppress(OSError):
            self.sock.close()

    def abort(self) -> None:
        """Break the connection off (a stop whose grace is over)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- the request ------------------------------------------------------------------

    def _advance(self) -> Next:
        """Take the next step with what has arrived: a head, a body, a request."""
        if self.phase is Phase.IDLE:
            if not self._in:
                return Next.READ
            self.phase = Phase.HEAD  # a request began: from now on it has header_timeout
            self._started = time.monotonic()
            self.deadline = self._started + self.config.header_timeout
        if self.phase is Phase.HEAD:
            step = self._take_head()
            if step is not None:
                return step
        if len(self._in) < self._body_length:
            return Next.READ
        body = bytes(self._in[:self._body_length])
        del self._in[:self._body_length]
        assert self._head is not None
        request = Request(self._head, self.client, body)
        if self.on_loop:
            return self._answer(self.respond(request))
        self.phase = Phase.WORKING
        self.pending = request
        return Next.WORK

    def _take_head(self) -> Next | None:
        """Parse a whole head and ask the site about it; None to go on to its body."""
        end = head_end(self._in)
        if end < 0:
            if len(self._in) > HEAD_LIMIT:
                self._line = "-"
                return self._answer(text(431, "431 request head too large\n", close=True))
            return Next.READ
        data = bytes(self._in[:end])
        del self._in[:end]
        self._started = time.monotonic()
        self._line = data[:data.find(b"\n")].decode("iso-8859-1").rstrip("\r")
        try:
            head = parse_head(data)
        except heads.HeadError as exc:
            return self._answer(text(exc.status, f"{exc.status} {exc.reason}\n", close=True))
        if head is None:  # an empty request line: a client with nothing to ask
            return Next.CLOSE
        self._head = head
        admission = self.site.admit(head)
        if admission.refusal is not None:
            return self._answer(admission.refusal)
        self.on_loop = admission.on_loop
        self._body_length = admission.body_length
        if self._body_length:
            self.phase = Phase.BODY
            self.deadline = time.monotonic() + self.config.header_timeout
            if len(self._in) < self._body_length and head.version_number >= (1, 1) and \
                    (head.headers.get("Expect") or "").lower() == "100-continue":
                # The client waits for this before its body.
                with contextlib.suppress(OSError):
                    self.sock.send(_CONTINUE, socket.MSG_DONTWAIT)
        return None

    def respond(self, request: Request) -> Response:
        """The site's answer; a crash in it is logged and answered 500 (any thread)."""
        try:
            return self.site.respond(request)
        except Exception:  # noqa: BLE001 - a bug in one request must not kill the server
            _log.exception("http.handler_crashed", client=self.client)
            return text(500, "internal error\n", close=True)

    # -- the response -----------------------------------------------------------------

    def _answer(self, response: Response) -> Next:
        self.phase = Phase.SENDING
        head = self._head
        self._close_after = response.close or head is None or not head.keep_alive
        self._status = response.status
        self._out += self._serialize(response)
        if response.file is not None:
            self._file = response.file
            self._offset, self._remaining = response.offset, response.count
        return self.writable()

    def _serialize(self, response: Response) -> bytes:
        head = self._head
        lines = [f"HTTP/1.1 {response.status} {phrase(response.status)}\r\n"
                 f"Server: {SERVER}\r\nDate: {conditions.http_date(time.time())}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in response.fields)
        if response.close or head is None or not head.keep_alive:
            lines.append("Connection: close\r\n")
        elif head.version_number < (1, 1):  # it asked for keep-alive, and gets it
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        if response.omit_body or not response.body:
            return data
        self._sent += len(response.body)
        return data + response.body

    def _answered(self) -> None:
        self._end_file()
        if self._line:
            head = self._head
            _log.info(
                "http.access",
                method=head.method if head else "-",
                path=head.target if head else self._line[:200],
                status=self._status,
                bytes=self._sent,
                duration_ms=round((time.monotonic() - self._started) * 1000, 3),
                client=self.client,
            )
        self._head = None
        self._line = ""
        self._status = self._sent = self._body_length = 0
        self.on_loop = False

    def _end_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._remaining = 0
