"""The HTTP server: the driver repository (``reconciler serve``, the daemon) and the push
webhook, on one core.

Layers, each importing only those before it: ``heads`` parses a request head, ``paths``
routes a target and ``conditions`` holds the validator and range rules (pure);
``messages`` the request and response values and the ``Site`` protocol; ``responder``
answers the driver repository's requests (pure, given a context that opens ``files``);
``intake`` takes build requests; ``connection`` moves one connection's bytes (a state
machine); ``loop`` multiplexes connections over epoll and a bounded worker pool;
``server`` wires the store's site onto a loop.
"""

from reconciler.httpd.server import DriverServer, ServerConfig

__all__ = ["DriverServer", "ServerConfig"]
