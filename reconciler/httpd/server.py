"""The driver repository server: ``http.server.HTTPServer``, an epoll loop, a bounded pool.

``ThreadingHTTPServer`` gives every connection a thread for as long as it is open, so 500
idle keep-alive clients cost 500 threads, and a few thousand take the process down. Here
one thread (``serve_forever``) watches the listening socket and every connection with
epoll. Idle connections cost a file descriptor and a few hundred bytes.

What a loader asks for (``GET``/``HEAD`` of a store file, ``/healthz``) is answered on
the loop thread itself, and no answer ever blocks: the head and the first part of the
file go out as far as the socket takes them, and the rest is sent with ``sendfile`` each
time epoll says the socket is writable again. A thread per request cost more than the
answer: in a boot storm (a thousand hosts, a new connection each) handing every request
to a worker meant two dozen thread switches per request over the GIL, and a third less
throughput. What can block or take long (``/index.json``, which reads the whole store; a
build request, whose body is read and whose queue is written; a malformed or oversized
head) goes to a fixed pool of worker threads, and comes back to the loop for its reply
to be sent.

A request is served only once its whole head has arrived: the loop gathers partial heads
without blocking (``DriverRequestHandler.gather_head``), so a client trickling its headers
in (slowloris) holds a small buffer, not a thread, and is dropped when ``header_timeout``
runs out. A client that stops reading its file holds a descriptor, and is dropped after
``io_timeout`` without progress.

Limits (``ServerConfig``): ``workers`` threads; ``header_timeout`` seconds for a request
head to arrive whole; ``io_timeout`` seconds without progress on a read or a write (a
stalled reader) before the connection is dropped; ``idle_timeout`` for a keep-alive
connection between requests; ``max_connections`` open at once (beyond it new connections
are closed at once); a listen backlog of ``backlog``.

``stop`` stops accepting, closes idle connections, lets requests in progress (and files
going out) finish for ``grace`` seconds, then breaks them, and joins every thread.
"""

from __future__ import annotations

import contextlib
import http.server
import platform
import queue
import resource
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from reconciler import logs
from reconciler.edges.store.local import Store
from reconciler.errors import ServerError
from reconciler.httpd import paths
from reconciler.httpd.files import StoreFiles
from reconciler.httpd.handler import DriverRequestHandler, HeadState, Outcome
from reconciler.httpd.intake import Intake
from reconciler.model import artifacts

_log = logs.get("reconciler.httpd")
_ACCEPTS_PER_WAKE = 256
_SWEEP_INTERVAL = 0.1  # how often deadlines of parked connections are checked


def host_store_arch() -> str:
    """This machine's arch in store spelling; x86_64 if it is not one Falco ships for."""
    try:
        return artifacts.store_arch(platform.machine())
    except ValueError:
        return paths.STORE_ARCHES[0]


def _default_max_connections() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(16, min(10000, soft - 64))


@dataclass(frozen=True)
class ServerConfig:
    # Workers answer only what may block (index.json, build requests): few are needed.
    workers: int = 8
    header_timeout: float = 10.0
    io_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = field(default_factory=_default_max_connections)
    backlog: int = 1024
    host_arch: str = field(default_factory=host_store_arch)


class DriverHTTPServer(http.server.HTTPServer):
    """HTTPServer whose ``serve_forever`` multiplexes idle connections (module docstring)."""

    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], files: StoreFiles, config: ServerConfig,
                 intake: Intake | None = None) -> None:
        self.files = files
        self.config = config
        self.intake = intake
        self.request_queue_size = config.backlog
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        # Connections are armed EPOLLONESHOT: an event disarms one, so the loop hands it to
        # a worker without unregistering, and the worker re-arms it when done, without
        # waking the loop. ``_conns`` maps fds to connections; ``_parked`` holds the
        # deadlines (idle or header timeout) of those waiting in epoll.
        self._epoll = select.epoll()
        self._conns: dict[int, DriverRequestHandler] = {}
        self._parked: dict[DriverRequestHandler, float] = {}
        # Connections whose file is still going out, with the time by which the client
        # must have taken more of it (io_timeout); they are busy too.
        self._sending: dict[DriverRequestHandler, float] = {}
        self._busy: set[DriverRequestHandler] = set()
        self._loop_over = False
        self._grace_until = 0.0
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        self._stopping = False
        self._queue: queue.SimpleQueue[DriverRequestHandler | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._worker, name=f"httpd-worker-{n}", daemon=True)
            for n in range(config.workers)
        ]
        self._loop_done = threading.Event()
        self._loop_done.set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        super().__init__(address, DriverRequestHandler)
        self.socket.setblocking(False)
        for worker in self._workers:
            worker.start()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves getfqdn(host): a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    # -- the loop ---------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._loop_done.clear()
        self._loop_over = False
        listen_fd, wake_fd = self.socket.fileno(), self._wake_r.fileno()
        self._epoll.register(listen_fd, select.EPOLLIN)
        self._epoll.register(wake_fd, select.EPOLLIN)
        accepting = True
        try:
            while True:
                if self._stopping:
                    if accepting:  # stop taking connections; idle ones are closed
                        accepting = False
                        self._epoll.unregister(listen_fd)
                        self._close_parked()
                    if self._drained():
                        break
                for fd, _events in self._epoll.poll(self._next_timeout(poll_interval)):
                    if fd == listen_fd:
                        self._accept()
                    elif fd == wake_fd:
                        with contextlib.suppress(BlockingIOError):
                            self._wake_r.recv(4096)
                    else:
                        self._ready(fd)
                self._expire()
        finally:
            self._end_loop(listen_fd if accepting else None, wake_fd)

    def _drained(self) -> bool:
        """While stopping: True once nothing is in progress, or grace is over (files
        still going out are sent until then)."""
        with self._lock:
            busy = bool(self._busy)
        return not busy or time.monotonic() >= self._grace_until

    def _ready(self, fd: int) -> None:
        handler = self._conns.get(fd)
        if handler is None:
            return
        try:
            if handler in self._sending:
                self._writable(handler)
            else:
                self._readable(handler)
        except OSError:  # epoll refused the fd: this connection is over
            self._drop(handler)

    def _end_loop(self, listen_fd: int | None, wake_fd: int) -> None:
        with self._lock:
            self._loop_over = True
            sending = list(self._sending)
            self._sending.clear()
            self._busy.difference_update(sending)
        for handler in sending:  # grace is over: these are broken off
            self._close(handler)
        if listen_fd is not None:
            self._epoll.unregister(listen_fd)
        self._epoll.unregister(wake_fd)
        self._close_parked()
        self._loop_done.set()

    def _next_timeout(self, poll_interval: float) -> float:
        if self._stopping:
            poll_interval = min(poll_interval, 0.02)
        if not (self._parked or self._sending):
            return poll_interval
        return max(0.0, min(poll_interval, self._next_sweep - time.monotonic()))

    def _writable(self, handler: DriverRequestHandler) -> None:
        with self._lock:
            self._sending.pop(handler, None)
        self._after(handler, self._serve(handler, handler.send_more))

    def _readable(self, handler: DriverRequestHandler) -> None:
        had_partial = handler.has_partial_head
        if handler.gather_head() is HeadState.READY:
            with self._lock:
                self._parked.pop(handler, None)
                self._busy.add(handler)
            if handler.quick():
                # Answered here: a thread switch per request cost more than the answer.
                # A pipelined request after it goes to a worker (_after).
                self._after(handler, self._serve(handler))
            else:
                self._queue.put(handler)
            return
        if not had_partial:  # a request began: from now on it has header_timeout
            with self._lock:
                self._parked[handler] = time.monotonic() + self.config.header_timeout
        self._arm(handler)

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, client = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: leave it in the backlog
                _log.warning("http.accept_failed", error=str(exc))
                return
            if len(self._conns) >= self.config.max_connections:
                _log.warning("http.too_many_connections", limit=self.config.max_connections)
                sock.close()
                continue
            try:
                handler = DriverRequestHandler(sock, client, self)
            except OSError:
                sock.close()
                continue
            with self._lock:
                self._conns[sock.fileno()] = handler
            try:
                self._park(handler, first=True)
            except OSError:
                self._drop(handler)

    def _park(self, handler: DriverRequestHandler, *, first: bool = False) -> None:
        """Wait in epoll for the next request (any thread may call this)."""
        wait = self.config.header_timeout if handler.has_partial_head else self.config.idle_timeout
        with self._lock:
            self._parked[handler] = time.monotonic() + wait
        fd = handler.connection.fileno()
        if first:
            self._epoll.register(fd, select.EPOLLIN | select.EPOLLONESHOT)
        else:
            self._arm(handler)

    def _arm(self, handler: DriverRequestHandler) -> None:
        self._epoll.modify(handler.connection.fileno(), select.EPOLLIN | select.EPOLLONESHOT)

    def _expire(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        with self._lock:
            expired = [h for h, deadline in self._parked.items() if deadline <= now]
            for handler in expired:
                del self._parked[handler]
            stalled = [h for h, deadline in self._sending.items() if deadline <= now]
            for handler in stalled:  # a reader that took nothing for io_timeout
                del self._sending[handler]
                self._busy.discard(handler)
        for handler in stalled:
            _log.debug("http.send_stalled", client=str(handler.client_address[0]))
        for handler in (*expired, *stalled):
            self._close(handler)

    def _drop(self, handler: DriverRequestHandler) -> None:
        with self._lock:
            self._parked.pop(handler, None)
        self._close(handler)

    def _close_parked(self) -> None:
        with self._lock:
            parked = list(self._parked)
            self._parked.clear()
        for handler in parked:
            self._close(handler)

    # -- workers ----------------------------------------------------------------------

    def _worker(self) -> None:
        while (handler := self._queue.get()) is not None:
            self._work(handler)

    def _work(self, handler: DriverRequestHandler) -> None:
        outcome = self._serve(handler)
        # A pipelining client already sent the next request: answer it here.
        while outcome is Outcome.KEEP and not self._stopping and handler.next_request_ready():
            outcome = self._serve(handler)
        self._after(handler, outcome)

    @staticmethod
    def _serve(handler: DriverRequestHandler,
               step: Callable[[], Outcome] | None = None) -> Outcome:
        """``handler.serve_one()`` (or ``step``), a crash in it logged and closed."""
        try:
            return step() if step else handler.serve_one()
        except Exception:  # noqa: BLE001 - a bug in one request must not kill the server
            _log.exception("http.handler_crashed", client=str(handler.client_address[0]))
            return Outcome.CLOSE

    def _after(self, handler: DriverRequestHandler, outcome: Outcome) -> None:
        """Where a connection goes once a worker or the loop is done with it for now:
        back to epoll to send the rest of its file, or for its next request, or closed."""
        if outcome is Outcome.SENDING:
            with self._lock:
                taken = not self._loop_over
                if taken:
                    self._sending[handler] = time.monotonic() + self.config.io_timeout
            if taken:
                try:
                    self._epoll.modify(handler.connection.fileno(),
                                       select.EPOLLOUT | select.EPOLLONESHOT)
                    return
                except OSError:
                    with self._lock:
                        self._sending.pop(handler, None)
            outcome = Outcome.CLOSE
        if outcome is Outcome.KEEP and not self._stopping and handler.next_request_ready():
            self._queue.put(handler)  # pipelined, and read already: still busy
            return
        with self._lock:
            self._busy.discard(handler)
        if outcome is Outcome.KEEP and not self._stopping:
            try:
                self._park(handler)
            except OSError:
                self._close(handler)
        else:
            self._close(handler)

    def _close(self, handler: DriverRequestHandler) -> None:
        with self._lock:
            self._conns.pop(handler.connection.fileno(), None)
        handler.close()  # closing the fd also takes it out of epoll

    # -- stopping ---------------------------------------------------------------------

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop the loop, close idle connections, finish or break requests in progress."""
        self._grace_until = time.monotonic() + grace
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        # The loop ends once nothing is in progress, or grace is over (it breaks off
        # the files it was still sending).
        self._loop_done.wait()
        with self._lock:
            busy = list(self._busy)
        for handler in busy:  # still in a worker after grace
            handler.abort()
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()
        self._close_parked()  # any a worker parked while the loop was ending

    def server_close(self) -> None:
        super().server_close()
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)


class DriverServer:
    """The store served over HTTP, for ``reconciler serve`` and the daemon.

    ``start()`` binds and serves from a background thread; ``serve_forever()`` serves in
    the calling thread until ``stop()`` (from another thread or a signal handler's flag).
    ``address`` is the bound address (port 0 picks a free one); ``url`` the base URL to
    hand to Falco as ``DRIVERS_REPO``. A context manager: ``with DriverServer(...) as s``.
    With an ``intake`` it also takes build requests (``POST /v1/build-requests``).
    """

    def __init__(
        self, store: Store, address: tuple[str, int], *, config: ServerConfig | None = None,
        intake: Intake | None = None,
    ) -> None:
        self.store = store
        self.intake = intake
        self.store_root = store.root
        self.requested_address = address
        self.config = config or ServerConfig()
        self._httpd: DriverHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _bind(self) -> DriverHTTPServer:
        if self._httpd is None:
            try:
                self._httpd = DriverHTTPServer(
                    self.requested_address, StoreFiles(self.store), self.config, self.intake
                )
            except OSError as exc:
                host, port = self.requested_address
                raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            _log.info("http.listening", url=self.url, store=str(self.store_root),
                      workers=self.config.workers)
        return self._httpd

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise ServerError("the driver server is not bound yet: call start()")
        host, port = self._httpd.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def open_connections(self) -> int:
        return self._httpd.open_connections if self._httpd else 0

    def store_readable(self) -> bool:
        """What ``/healthz`` says: the store folder exists and can be listed."""
        return self.store.readable()

    def start(self) -> DriverServer:
        """Bind, then serve from a background thread; returns once connections are accepted."""
        httpd = self._bind()
        self._thread = threading.Thread(target=httpd.serve_forever, name="httpd-loop",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind if needed and serve in this thread until ``stop()``."""
        self._bind().serve_forever()

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, let requests finish (``grace`` s), join."""
        if self._httpd is None or self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown(grace)
        if self._thread is not None:
            self._thread.join()
        self._httpd.server_close()
        _log.info("http.stopped", store=str(self.store_root))

    def __enter__(self) -> DriverServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
