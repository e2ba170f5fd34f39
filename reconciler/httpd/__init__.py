"""The driver repository server (``reconciler serve`` and the daemon's server).

``paths`` routes a request target (pure), ``conditions`` holds the HTTP validator and range
rules (pure), ``files`` opens and verifies store files, ``handler`` answers one request on
``http.server``'s handler, ``server`` multiplexes connections over a bounded worker pool.
"""

from reconciler.httpd.server import DriverServer, ServerConfig

__all__ = ["DriverServer", "ServerConfig"]
