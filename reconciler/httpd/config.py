"""The server's limits (``ServerConfig``), one value shared by the loop and its connections.

``workers`` threads answer what may block (``/index.json``, build requests, webhooks);
``header_timeout`` seconds for a request head to arrive whole, and again for a body;
``io_timeout`` seconds without progress on a response (a stalled reader) before the
connection is dropped; ``idle_timeout`` for a keep-alive connection between requests;
``max_connections`` open at once and ``max_per_client`` from one client (an address, an
IPv6 /64: ``clients``; beyond them a new connection is answered 503 with ``Retry-After``
and closed); ``buffer_budget`` bytes of
request heads and bodies held at once over all connections (a connection that would go
over it is answered 503); a listen backlog of ``backlog``; ``host_arch`` is tried first
for arch-less paths.
"""

from __future__ import annotations

import platform
import resource
from dataclasses import dataclass, field

from reconciler.httpd import paths
from reconciler.model import artifacts


def host_store_arch() -> str:
    """This machine's arch in store spelling; x86_64 if it is not one Falco ships for."""
    try:
        return artifacts.store_arch(platform.machine())
    except ValueError:
        return paths.STORE_ARCHES[0]


def _default_max_connections() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(16, min(100_000, soft - 64))


@dataclass(frozen=True)
class ServerConfig:
    # Workers answer only what may block (index.json, build requests): few are needed.
    workers: int = 8
    header_timeout: float = 10.0
    io_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = field(default_factory=_default_max_connections)
    max_per_client: int | None = None  # None: a quarter of max_connections, at least 64
    buffer_budget: int = 64 << 20
    backlog: int = 1024
    host_arch: str = field(default_factory=host_store_arch)

    @property
    def per_client(self) -> int:
        """Connections one client (an address, an IPv6 /64) may hold."""
        if self.max_per_client is not None:
            return self.max_per_client
        return max(64, self.max_connections // 4)
