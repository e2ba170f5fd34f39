"""The driver repository server's public face; the implementation is ``reconciler.httpd``."""

from reconciler.httpd.server import DriverServer, ServerConfig

__all__ = ["DriverServer", "ServerConfig"]
