"""The driver repository server: the store's ``Site`` served by the ``Loop``.

``DriverServer`` binds its address on a ``loop.Loop`` and serves the store there
(``responder``); more sites (the push webhook) may listen on the same loop, each on its own
address (``listen``). The pieces: ``heads`` parses a request head, ``paths`` routes its
target, ``responder`` answers it (pure), ``connection`` moves one connection's bytes, and
``loop`` multiplexes them over epoll and a bounded pool of workers.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from reconciler import logs
from reconciler.edges.host import memory
from reconciler.edges.store.local import Store
from reconciler.errors import ServerError
from reconciler.httpd.config import ServerConfig, host_store_arch
from reconciler.httpd.files import StoreFiles
from reconciler.httpd.intake import Intake
from reconciler.httpd.loop import Loop
from reconciler.httpd.messages import Site
from reconciler.httpd.responder import Context, DriverSite

__all__ = ["DriverServer", "ServerConfig", "host_store_arch"]

_log = logs.get("reconciler.httpd")


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
        self._loop: Loop | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _bind(self) -> Loop:
        if self._loop is None:
            loop = Loop(self.config, memory.release_free_memory)
            site = DriverSite(Context(StoreFiles(self.store), self.config.host_arch,
                                      self.intake))
            try:
                self._socket = loop.listen(self.requested_address, site)
            except OSError as exc:
                loop.stop(0)
                host, port = self.requested_address
                raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            self._loop = loop
            _log.info("http.listening", url=self.url, store=str(self.store_root),
                      workers=self.config.workers)
        return self._loop

    def listen(self, address: tuple[str, int], site: Site) -> socket.socket:
        """Serve ``site`` on ``address`` too, with this server's loop, limits and workers
        (the push webhook); ``unlisten`` with the socket returned stops it."""
        return self._bind().listen(address, site)

    def unlisten(self, sock: socket.socket) -> None:
        if self._loop is not None:
            self._loop.unlisten(sock)

    @property
    def address(self) -> tuple[str, int]:
        if self._socket is None:
            raise ServerError("the driver server is not bound yet: call start()")
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def open_connections(self) -> int:
        return self._loop.open_connections if self._loop else 0

    def store_readable(self) -> bool:
        """What ``/healthz`` says: the store folder exists and can be listed."""
        return self.store.readable()

    def start(self) -> DriverServer:
        """Bind, then serve from a background thread; returns once connections are accepted."""
        loop = self._bind()
        self._thread = threading.Thread(target=loop.run, name="httpd-loop", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind if needed and serve in this thread until ``stop()``."""
        self._bind().run()

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, let requests finish (``grace`` s), join."""
        if self._loop is None or self._stopped:
            return
        self._stopped = True
        self._loop.stop(grace)
        if self._thread is not None:
            self._thread.join()
        _log.info("http.stopped", store=str(self.store_root))

    def __enter__(self) -> DriverServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
