"""The push webhook served by the HTTP core: on the driver server's loop, on its own
address, and never blocked by a client that trickles its request."""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon.wakeup import Wakeup
from reconciler.daemon.webhook import WebhookServer
from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from tests.httpd.fleet import raw_request, status_of

SECRET = b"k"


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[DriverServer]:
    config = ServerConfig(workers=2, header_timeout=30.0)
    (tmp_path / "store").mkdir()
    with DriverServer(Store(tmp_path / "store"), ("127.0.0.1", 0), config=config) as server:
        yield server


def _push(address: tuple[str, int], body: bytes = b"{}", secret: bytes = SECRET) -> bytes:
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return raw_request(address, b"POST /hook HTTP/1.1\r\nConnection: close\r\n"
                       b"X-Hub-Signature-256: sha256=" + sig.encode() +
                       b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_the_webhook_shares_the_driver_servers_loop_on_its_own_address(
        driver: DriverServer) -> None:
    wakeup = Wakeup(debounce=0.01)
    hook = WebhookServer(("127.0.0.1", 0), SECRET, wakeup, server=driver).start()
    try:
        assert hook.address != driver.address
        assert status_of(_push(hook.address)) == 202
        assert wakeup.wait(2) == {"webhook"}
        assert status_of(_push(hook.address, secret=b"guess")) == 401
        # Each address serves only its own site.
        assert status_of(raw_request(hook.address, b"GET /healthz HTTP/1.1\r\n\r\n")) == 405
        assert status_of(_push(driver.address)) == 405
    finally:
        hook.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(hook.address, timeout=5)
    assert status_of(raw_request(driver.address, b"GET /healthz HTTP/1.1\r\n"
                                 b"Connection: close\r\n\r\n")) == 200


def test_a_trickling_client_does_not_block_other_pushes(driver: DriverServer) -> None:
    """The old single-threaded server read one request at a time: one connection sending
    a byte every few seconds held every push back."""
    wakeup = Wakeup(debounce=0.01)
    hook = WebhookServer(("127.0.0.1", 0), SECRET, wakeup, server=driver).start()
    trickling = [socket.create_connection(hook.address, timeout=5) for _ in range(4)]
    try:
        for sock in trickling:
            sock.sendall(b"POST /hook HTTP/1.1\r\nContent-Le")
        assert status_of(_push(hook.address)) == 202
    finally:
        for sock in trickling:
            sock.close()
        hook.stop()


@pytest.mark.parametrize("length", ["²", "9" * 5000, "", "-1"])
def test_malformed_lengths_get_a_plain_refusal(driver: DriverServer, length: str) -> None:
    hook = WebhookServer(("127.0.0.1", 0), SECRET, Wakeup(debounce=0.01),
                         server=driver).start()
    try:
        reply = raw_request(hook.address, b"POST /hook HTTP/1.1\r\nContent-Length: "
                            + length.encode("utf-8") + b"\r\n\r\n")
        assert status_of(reply) in (400, 411, 413)
    finally:
        hook.stop()
