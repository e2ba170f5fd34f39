"""The server's loop: epoll over listening sockets and connections, and a bounded pool.

A thread per connection would make 500 idle keep-alive clients cost 500 threads. Here one
thread (``run``) watches every listening socket and every connection with epoll; an idle
connection costs a descriptor and a few hundred bytes. Each listening socket serves its
own ``Site`` (the driver repository, the push webhook), with the same connections,
limits and workers.

The loop thread alone touches connections (``connection``): it reads, parses, and
answers on the spot what a site says never blocks (a store file, ``/healthz``: in a boot
storm a thread switch per request cost more than the answer). What may block
(``/index.json`` reads the whole store; a build request writes its queue; a webhook wakes
the daemon) goes to a fixed pool of ``workers`` with the request, fully read; the answer
comes back through a queue and the loop sends it. No worker ever waits on a client.

Connections are armed ``EPOLLONESHOT``: each event disarms one, so a connection whose
request is with a worker is not reported again until the loop re-arms it. Deadlines
(idle, header, io) are kept per length of wait, in insertion order, so the sweep reads
only the ones that are due.

Abuse is bounded here: a client (an address; an IPv6 /64, ``clients``) holds at most
``per_client`` connections and the server ``max_connections``; a connection over either
cap is held (at most ``_OVERFLOW`` of them, a second at most) so that its request, if it
sends one, is answered 503 with
``Retry-After``. Out of descriptors, a reserve one is given up to accept and answer a
waiting client the same way, and accepting pauses for a moment rather than spinning on
EMFILE. Heads and bodies held at once are bounded by ``buffer_budget``, and the memory of
closed connections is given back (``release_memory``). One client's requests take at
most half the workers; the rest wait their turn behind other clients'. Refusals are
logged at most once a second, with a count.

``stop`` stops accepting, closes idle connections, lets requests in progress (and files
going out) finish for ``grace`` seconds, then breaks them, and joins every thread.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from reconciler import logs
from reconciler.httpd import clients
from reconciler.httpd.config import ServerConfig
from reconciler.httpd.connection import Connection, Next, Phase
from reconciler.httpd.messages import BusySite, Response, Site
from reconciler.httpd.throttle import Throttled

_log = logs.get("reconciler.httpd")
_ACCEPTS_PER_WAKE = 256
_SWEEP_INTERVAL = 0.1  # how often deadlines are checked
_READ = select.EPOLLIN | select.EPOLLONESHOT
_WRITE = select.EPOLLOUT | select.EPOLLONESHOT
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_PAUSE = 0.1  # seconds without accepting once descriptors ran out
_RELEASE_AFTER = 8 << 20  # bytes of request buffers freed before memory is given back
_OVERFLOW = 32  # connections over a cap held (a second at most) to answer their request 503
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; "
         b"charset=utf-8\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
         b"busy, retry shortly\n")


class Loop:
    def __init__(self, config: ServerConfig,
                 release_memory: Callable[[], None] = lambda: None) -> None:
        self.config = config
        # Given the buffers of closed connections back to the system (edges.host.memory):
        # without it RSS stays at the peak a flood of partial heads reached.
        self._release_memory = release_memory
        self._freed = 0
        self._epoll = select.epoll()
        self._listeners: dict[int, tuple[socket.socket, Site]] = {}
        self._conns: dict[int, Connection] = {}
        # timeout length -> {connection: deadline}, oldest first (module docstring)
        self._timers: dict[float, dict[Connection, float]] = {}
        self._clients: collections.Counter[str] = collections.Counter()  # connections each
        self._per_client = config.per_client
        self._overflow: set[Connection] = set()  # over a cap, waiting for a request to refuse
        self._overflow_config = replace(config, idle_timeout=1.0, header_timeout=1.0)
        self._buffered = 0  # bytes of heads and bodies held by all connections
        self._refusals = Throttled()
        self._reserve: int | None = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._paused_until = 0.0
        # Workers: a client's requests beyond its share wait in its own line (fairness).
        self._share = max(1, config.workers // 2)
        self._running: collections.Counter[str] = collections.Counter()
        self._waiting: dict[str, collections.deque[Connection]] = {}
        self._jobs: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Connection, Response]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._grace_until = 0.0
        self._next_sweep = 0.0
        self._loop_done = threading.Event()
        self._loop_done.set()
        self._workers = [
            threading.Thread(target=self._work, name=f"httpd-worker-{n}", daemon=True)
            for n in range(config.workers)
        ]
        for worker in self._workers:
            worker.start()

    # -- listening --------------------------------------------------------------------

    def listen(self, address: tuple[str, int], site: Site) -> socket.socket:
        """Bind ``address`` and serve ``site`` there (also while the loop runs)."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self.config.backlog)
            sock.setblocking(False)
            self._listeners[sock.fileno()] = (sock, site)
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        except OSError:
            sock.close()
            raise
        return sock

    def unlisten(self, sock: socket.socket) -> None:
        """Stop serving on ``sock`` and close it (its open connections stay)."""
        fd = sock.fileno()
        if self._listeners.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
        sock.close()

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # -- the loop ---------------------------------------------------------------------

    def run(self, poll_interval: float = 0.5) -> None:
        """Serve in this thread until ``stop``."""
        self._loop_done.clear()
        wake_fd = self._wake_r.fileno()
        self._epoll.register(wake_fd, select.EPOLLIN)
        accepting = True
        try:
            while True:
                if self._stopping:
                    if accepting:  # stop taking connections; idle ones are closed
                        accepting = False
                        self._close_listeners()
                        self._close_waiting()
                    if not self._in_progress() or time.monotonic() >= self._grace_until:
                        break
                if accepting and self._paused_until and time.monotonic() >= self._paused_until:
                    self._resume()
                for fd, _events in self._epoll.poll(self._next_timeout(poll_interval)):
                    try:
                        self._event(fd, wake_fd)
                    except Exception:  # noqa: BLE001 - one bad event must not stop the server
                        self._event_failed(fd)
                try:
                    self._expire()
                except Exception:  # noqa: BLE001 - as above
                    self._event_failed(-1)
        finally:
            with contextlib.suppress(OSError):
                self._epoll.unregister(wake_fd)
            for conn in list(self._conns.values()):  # grace is over: these are broken off
                self._close(conn)
            self._loop_done.set()

    def _event(self, fd: int, wake_fd: int) -> None:
        conn = self._conns.get(fd)
        if conn is not None:
            held = conn.buffered
            step = conn.writable() if conn.phase is Phase.SENDING else conn.readable()
            self._step(conn, step, held)
        elif fd == wake_fd:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
            self._take_done()
        elif fd in self._listeners:
            self._accept(fd)

    def _event_failed(self, fd: int) -> None:
        """A bug, or a failure nothing expected (such as logging out of descriptors):
        the connection it was about is closed, the loop goes on."""
        with contextlib.suppress(Exception):
            _log.exception("http.loop_error")
        conn = self._conns.get(fd)
        if conn is not None:
            with contextlib.suppress(Exception):
                self._close(conn)

    def _in_progress(self) -> bool:
        return any(c.phase in (Phase.WORKING, Phase.SENDING) for c in self._conns.values())

    def _next_timeout(self, poll_interval: float) -> float:
        if self._stopping:
            poll_interval = min(poll_interval, 0.02)
        if self._paused_until:
            poll_interval = min(poll_interval, max(0.0, self._paused_until - time.monotonic()))
        if not any(self._timers.values()):
            return poll_interval
        return max(0.0, min(poll_interval, self._next_sweep - time.monotonic()))

    def _step(self, conn: Connection, step: Next, held: int) -> None:
        """Wait for what ``conn`` needs next (``Next``); ``held`` is what it buffered
        before the call that gave ``step``."""
        self._buffered += conn.buffered - held
        if self._buffered > self.config.buffer_budget and step is Next.READ \
                and conn.phase in (Phase.HEAD, Phase.BODY):
            self._refusals.warning("http.buffers_full", budget=self.config.buffer_budget,
                                   client=conn.client)
            self._refuse(conn.sock)
            self._close(conn)
            return
        try:
            if step is Next.READ:
                if self._stopping and conn.phase is not Phase.SENDING:
                    self._close(conn)
                    return
                self._time(conn)
                self._epoll.modify(conn.fd, _READ)
            elif step is Next.WRITE:
                self._time(conn)
                self._epoll.modify(conn.fd, _WRITE)
            elif step is Next.WORK:
                self._untime(conn)
                self._dispatch(conn)
            else:
                self._close(conn)
        except OSError:  # epoll refused the fd: this connection is over
            self._close(conn)

    def _accept(self, listen_fd: int) -> None:
        listener, site = self._listeners[listen_fd]
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._exhausted(listener, exc)
                else:
                    self._refusals.warning("http.accept_failed", error=str(exc))
                return
            client = str(peer[0])
            group = clients.group(client)
            serve, config = site, self.config
            if len(self._conns) - len(self._overflow) >= self.config.max_connections:
                self._refusals.warning("http.too_many_connections",
                                       limit=self.config.max_connections)
                serve, config = BusySite(), self._overflow_config
            elif self._clients[group] >= self._per_client:
                self._refusals.warning("http.too_many_from_client", client=client,
                                       counted_as=group, limit=self._per_client)
                serve, config = BusySite(), self._overflow_config
            if isinstance(serve, BusySite) and len(self._overflow) >= _OVERFLOW:
                self._refuse(sock, unasked=False)
                continue
            try:
                conn = Connection(sock, client, serve, config, group)
            except OSError:
                sock.close()
                continue
            self._conns[conn.fd] = conn
            if isinstance(serve, BusySite):
                self._overflow.add(conn)
            else:
                self._clients[conn.group] += 1
            try:
                self._time(conn)
                self._epoll.register(conn.fd, _READ)
            except OSError:
                self._close(conn)

    @staticmethod
    def _refuse(sock: socket.socket, *, unasked: bool = True) -> None:
        """503 with Retry-After, without waiting (a new socket's buffer takes it), and
        close; with ``unasked=False`` only if the client already sent its request (one
        that sent nothing is just closed)."""
        asked = False
        with contextlib.suppress(OSError):
            # Closing with a request unread would reset the connection, and the client
            # could lose the 503 with it: take what has arrived first.
            asked = bool(sock.recv(65536, socket.MSG_DONTWAIT))
        with contextlib.suppress(OSError):
            if asked or unasked:
                sock.send(_BUSY, socket.MSG_DONTWAIT)
                sock.shutdown(socket.SHUT_WR)
        sock.close()

    def _exhausted(self, listener: socket.socket, exc: OSError) -> None:
        """Out of descriptors: give up the reserve one to accept and refuse a waiting
        client, then stop accepting for a moment (epoll would report the backlog again
        at once: a busy loop)."""
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
            with contextlib.suppress(OSError):
                self._refuse(listener.accept()[0])
        with contextlib.suppress(OSError):
            self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._paused_until = time.monotonic() + _PAUSE
        for fd in self._listeners:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
        self._refusals.warning("http.descriptors_exhausted", error=str(exc))  # paused first

    def _resume(self) -> None:
        self._paused_until = 0.0
        for fd in self._listeners:
            with contextlib.suppress(OSError):
                self._epoll.register(fd, select.EPOLLIN)

    # -- deadlines --------------------------------------------------------------------

    def _time(self, conn: Connection) -> None:
        key = (conn.timeout, conn.deadline)
        if conn.timed == key:
            return
        self._untime(conn)
        self._timers.setdefault(key[0], {})[conn] = key[1]
        conn.timed = key

    def _untime(self, conn: Connection) -> None:
        if conn.timed is not None:
            self._timers[conn.timed[0]].pop(conn, None)
            conn.timed = None

    def _expire(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        if self._freed > _RELEASE_AFTER:
            self._freed = 0
            self._release_memory()
        for timers in self._timers.values():
            due = []
            for conn, deadline in timers.items():
                if deadline > now:
                    break  # the rest were set later, for as long a wait
                due.append(conn)
            for conn in due:
                held = conn.buffered
                conn.expired()
                self._buffered += conn.buffered - held
                self._close(conn)

    # -- workers ----------------------------------------------------------------------

    def _work(self) -> None:
        while (conn := self._jobs.get()) is not None:
            request = conn.pending
            assert request is not None
            self._done.put((conn, conn.respond(request)))
            with contextlib.suppress(OSError):  # a full pipe: the loop is waking anyway
                self._wake_w.send(b"\0")

    def _dispatch(self, conn: Connection) -> None:
        if self._running[conn.group] < self._share:
            self._running[conn.group] += 1
            self._jobs.put(conn)
        else:
            self._waiting.setdefault(conn.group, collections.deque()).append(conn)

    def _finished(self, group: str) -> None:
        """A worker is done with one of ``group``'s requests: its next one may go."""
        line = self._waiting.get(group)
        if line:
            self._jobs.put(line.popleft())
            if not line:
                del self._waiting[group]
            return
        self._running[group] -= 1
        if self._running[group] <= 0:
            del self._running[group]

    def _take_done(self) -> None:
        while True:
            try:
                conn, response = self._done.get_nowait()
            except queue.Empty:
                return
            self._finished(conn.group)
            if self._conns.get(conn.fd) is not conn:  # broken off meanwhile
                if response.file is not None:
                    response.file.close()
                continue
            held = conn.buffered
            self._step(conn, conn.worked(response), held)

    # -- closing ----------------------------------------------------------------------

    def _close(self, conn: Connection) -> None:
        self._untime(conn)
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
            self._buffered -= conn.buffered
            self._freed += conn.buffered
            if conn in self._overflow:
                self._overflow.discard(conn)
            else:
                self._clients[conn.group] -= 1
                if self._clients[conn.group] <= 0:
                    del self._clients[conn.group]
        conn.close()  # closing the fd also takes it out of epoll

    def _close_waiting(self) -> None:
        for conn in list(self._conns.values()):
            if conn.phase not in (Phase.WORKING, Phase.SENDING):
                self._close(conn)

    def _close_listeners(self) -> None:
        for sock, _site in list(self._listeners.values()):
            self.unlisten(sock)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, finish or break requests in progress
        within ``grace`` seconds, join every thread, release every descriptor."""
        self._grace_until = time.monotonic() + grace
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        self._loop_done.wait()
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()
        self._take_done()  # answers that came too late: their files are closed
        self._close_listeners()
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
