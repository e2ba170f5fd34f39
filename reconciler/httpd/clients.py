"""Which client a connection counts against, for the per-client caps and rate limits.

An IPv4 address is one client. An IPv6 address is counted by its /64: a subscriber, a
cloud instance or a container host is given at least a /64 and may use any address in
it, so counting addresses would let one machine open 2^64 clients' worth of connections.
An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, a dual-stack listener's IPv4 peer) is
that IPv4 address. Anything else (a Unix socket's empty name) is itself.
"""

from __future__ import annotations

import ipaddress

PREFIX_V6 = 64


def group(address: str) -> str:
    """The key ``address`` is counted under: ``192.0.2.1``, ``2001:db8:1:2::/64``."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # no zone index
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, PREFIX_V6), strict=False))
    return str(parsed)
