"""The push webhook: each forge's signature; the endpoint over real HTTP waking the loop
only when signed; served by the HTTP core, on the driver server's loop, on its own address,
and never blocked by a client that trickles its request."""

from __future__ import annotations

import hashlib
import hmac
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon.wakeup import Wakeup
from reconciler.daemon.webhook import WebhookServer, authentic
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


def test_webhook_signatures_of_each_forge() -> None:
    secret, body = b"s3cret", b'{"ref": "refs/heads/main"}'
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert authentic(secret, body, {"X-Hub-Signature-256": f"sha256={digest}"})
    assert authentic(secret, body, {"X-Gitea-Signature": digest})
    assert authentic(secret, body, {"X-Gitlab-Token": "s3cret"})
    assert not authentic(secret, body, {"X-Hub-Signature-256": f"sha256={'0' * 64}"})
    assert not authentic(secret, body + b" ", {"X-Hub-Signature-256": f"sha256={digest}"})
    assert not authentic(secret, body, {"X-Gitlab-Token": "guess"})
    assert not authentic(secret, body, {})


def test_webhook_endpoint_wakes_the_loop_only_when_signed() -> None:
    wakeup = Wakeup(debounce=0.01)
    server = WebhookServer(("127.0.0.1", 0), b"k", wakeup).start()
    url = f"http://127.0.0.1:{server.address[1]}/hook"
    body = b"{}"
    try:
        bad = urllib.request.Request(url, body, {"X-Hub-Signature-256": "sha256=00"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        assert wakeup.wait(0.1) == set()
        sig = hmac.new(b"k", body, hashlib.sha256).hexdigest()
        good = urllib.request.Request(url, body, {"X-Hub-Signature-256": f"sha256={sig}",
                                                  "X-GitHub-Event": "push"})
        with urllib.request.urlopen(good, timeout=5) as answer:
            assert answer.status == 202
        assert wakeup.wait(1) == {"webhook"}
        with pytest.raises(urllib.error.HTTPError) as get:
            urllib.request.urlopen(url, timeout=5)
        assert get.value.code == 405
        get.value.close()
    finally:
        server.stop()
