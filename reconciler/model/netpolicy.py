"""Where a download named by the repository (a manifest's ``kernelUrls``) may go: pure.

The URLs come from whoever can push; the daemon that fetches them sits on a build host,
beside cloud metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200), its own
loopback services and the private network. So only http(s), and only addresses that are
globally routable, unless the host's own settings allow a range (``kernel_url_allow``,
e.g. a package mirror on 10.0.0.0/8). IPv4 mapped into IPv6 is judged as IPv4. The check
is of the address actually connected to (``edges.http.guarded`` hands ``refusal`` to the
client), at every redirect hop, so neither a DNS name that resolves inward nor a redirect
gets round it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
DEFAULT_MAX_BYTES = 512 << 20  # a kernel's header packages are tens of MB


@dataclass(frozen=True)
class UrlPolicy:
    allow: tuple[Network, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached, or None if it may."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return None
        if ip.is_global and not ip.is_multicast:
            return None
        kind = ("loopback" if ip.is_loopback else "link-local (cloud metadata lives there)"
                if ip.is_link_local else "private" if ip.is_private else "not globally routable")
        return (f"{ip} is {kind}: a manifest's URL may not reach it unless the host's "
                "kernel_url_allow setting names its range")


STRICT = UrlPolicy()  # nothing but globally routable addresses
