"""Downloads under a ``model.netpolicy.UrlPolicy``: URLs the repository named.

Each hop resolves the name, refuses unless every address it gives passes the policy, and
then connects to exactly the address it checked (the TLS name check and ``Host`` stay the
URL's), so a name that resolves elsewhere a moment later cannot slip through. Redirects
are followed by hand (at most ``MAX_REDIRECTS``), each target checked the same way, never
through a proxy. The body is capped at the policy's ``max_bytes`` (a ``Content-Length``
over it is refused before reading) and the whole download at ``timeout`` seconds. Errors
are ``client.HttpError`` with one sentence.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.parse
from typing import BinaryIO

from reconciler.errors import HttpError
from reconciler.model.netpolicy import SCHEMES, UrlPolicy

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 1 << 20


class _Http(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _Https(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _address(parts: urllib.parse.SplitResult, port: int, policy: UrlPolicy) -> str:
    host = parts.hostname or ""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise HttpError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        why = policy.refusal(address)
        if why is not None:
            raise HttpError(f"refused {host}: {why}")
    if not addresses:
        raise HttpError(f"{host} resolves to no address")
    return addresses[0]


def download(url: str, handle: BinaryIO, *, policy: UrlPolicy, timeout: float) -> int:
    """Write the body of ``url`` into ``handle``; the number of bytes written."""
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise HttpError(f"refused {url}: only http:// and https:// URLs with a host")
        if parts.username or parts.password:
            raise HttpError("credentials in a URL are refused")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise HttpError(f"refused {url}: {exc}") from exc
        address = _address(parts, port, policy)
        kind = _Https if parts.scheme == "https" else _Http
        connection = kind(parts.hostname, address, port, max(0.1, deadline - time.monotonic()))
        try:
            connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/",
                                                               parts.query, "")),
                               headers={"User-Agent": "falco-reconciler"})
            answer = connection.getresponse()
            if answer.status in _REDIRECTS:
                location = answer.getheader("Location")
                if not location:
                    raise HttpError(f"GET {url} answered {answer.status} without a Location")
                url = urllib.parse.urljoin(url, location)
                continue
            if answer.status != 200:
                raise HttpError(f"GET {url} answered {answer.status}")
            return _copy(answer, handle, policy.max_bytes, deadline, url)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            if isinstance(exc, HttpError):
                raise
            raise HttpError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
    raise HttpError(f"more than {MAX_REDIRECTS} redirects")


def _copy(answer: http.client.HTTPResponse, handle: BinaryIO, limit: int, deadline: float,
          url: str) -> int:
    stated = answer.getheader("Content-Length")
    if stated is not None and stated.isdigit() and int(stated) > limit:
        raise HttpError(f"GET {url}: {stated} bytes is over the limit of {limit}")
    written = 0
    while chunk := answer.read(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise HttpError(f"GET {url}: more than the limit of {limit} bytes")
        if time.monotonic() > deadline:
            raise HttpError(f"GET {url}: not done within its deadline")
        handle.write(chunk)
    return written
