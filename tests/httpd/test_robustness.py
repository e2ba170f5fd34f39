"""Idle and slow clients, replaced files and stopping, against the real server."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path

from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from tests.httpd.fleet import KMOD, Fleet, content_for, raw_request, status_of


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("httpd-")]


def _wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        data: bytes = reply.read()
    return data


def _publish_big(fleet: Fleet, size: int) -> bytes:
    big = content_for(KMOD, size)
    source = fleet.root.parent / "big.ko"
    source.write_bytes(big)
    Store(fleet.root).publish(KMOD, source)
    return big


def _stalled_download(address: tuple[str, int]) -> tuple[socket.socket, bytes]:
    """A client that asks for the module, takes its first bytes (returned) and stops."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(10)
    sock.connect(address)
    sock.sendall(f"GET {KMOD.url_path()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    first = sock.recv(1024)
    assert first.startswith(b"HTTP/1.1 200")
    return sock, first


def _drain(sock: socket.socket) -> int:
    """Bytes the client still receives until the server closes or resets it."""
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received


def test_serves_while_500_idle_connections_are_open(fleet: Fleet) -> None:
    """500 clients that connect and say nothing, or fetch once and keep the connection:
    with 4 workers a 501st client is still served, and no thread per connection exists."""
    config = ServerConfig(workers=4, io_timeout=5.0, idle_timeout=60.0)
    idle: list[socket.socket] = []
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        try:
            for index in range(500):
                sock = socket.create_connection(server.address, timeout=10)
                if index % 2:  # half of them made a request and keep the connection alive
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
                idle.append(sock)
            assert _wait_until(lambda: server.open_connections >= 500)
            assert _get(server.url + KMOD.url_path()) == fleet.contents[KMOD]
            assert len(_worker_threads()) <= 4 + 1  # the workers and the selector loop
        finally:
            for sock in idle:
                sock.close()


def test_slow_request_senders_hold_no_worker(fleet: Fleet) -> None:
    """Slowloris: 50 clients trickle their request heads in while the server has one
    worker and a minute of header_timeout. Partial heads wait in the selector, not in a
    thread, so an honest client is still served."""
    config = ServerConfig(workers=1, header_timeout=60.0, io_timeout=60.0)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        stalled = [socket.create_connection(server.address, timeout=10) for _ in range(50)]
        for sock in stalled:
            sock.sendall(b"GET /heal")
        for sock in stalled:
            sock.sendall(b"thz HTTP/1.1\r\nHost: x\r\n")  # still no end of the head
        assert _get(server.url + "/healthz") == b"ok\n"
        for sock in stalled:
            sock.close()


def test_slow_request_senders_are_dropped_after_header_timeout(fleet: Fleet) -> None:
    config = ServerConfig(workers=1, header_timeout=0.5, io_timeout=60.0)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        sock = socket.create_connection(server.address, timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert sock.recv(100) == b""  # closed by the server, without an answer
        sock.close()


def test_a_head_sent_in_pieces_within_the_deadline_is_answered(fleet: Fleet) -> None:
    config = ServerConfig(workers=1, header_timeout=5.0)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        sock = socket.create_connection(server.address, timeout=10)
        for piece in (b"GET /hea", b"lthz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.05)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        sock.close()


def test_idle_keepalive_connections_are_closed_after_idle_timeout(fleet: Fleet) -> None:
    config = ServerConfig(workers=2, io_timeout=5.0, idle_timeout=0.3)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        sock = socket.create_connection(server.address, timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b"\r\n\r\nok\n"):
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
        assert sock.recv(100) == b""  # closed by the server once idle for 0.3 s
        sock.close()
        assert _wait_until(lambda: server.open_connections == 0)


def test_connections_beyond_the_limit_are_refused_not_queued(fleet: Fleet) -> None:
    config = ServerConfig(workers=2, max_connections=3)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        held = [socket.create_connection(server.address, timeout=10) for _ in range(3)]
        assert _wait_until(lambda: server.open_connections == 3)
        extra = socket.create_connection(server.address, timeout=10)
        assert extra.recv(100) == b""
        extra.close()
        held.pop().close()
        assert _wait_until(lambda: server.open_connections == 2)
        assert _get(server.url + "/healthz") == b"ok\n"
        for sock in held:
            sock.close()


def test_artifact_replaced_during_a_download_gives_the_whole_old_file(
    tmp_path: Path, fleet: Fleet
) -> None:
    """A slow reader is mid-way through a 16 MB module when a new build is published over
    it (rename): it still receives exactly the old file, and the next request the new."""
    old = content_for(KMOD, 16 * 1024 * 1024)
    new = content_for(KMOD, 5 * 1024 * 1024)[::-1]
    store = Store(fleet.root)
    for name, data in (("old.ko", old), ("new.ko", new)):
        (tmp_path / name).write_bytes(data)
    store.publish(KMOD, tmp_path / "old.ko")
    config = ServerConfig(workers=2, io_timeout=10.0)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.settimeout(20)
        sock.connect(server.address)
        sock.sendall(f"GET {KMOD.url_path()} HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n".encode())
        received = sock.recv(16 * 1024)
        store.publish(KMOD, tmp_path / "new.ko")  # atomic rename over the file being sent
        while chunk := sock.recv(16 * 1024):
            received += chunk
            time.sleep(0.0005)  # a slow reader
        sock.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % len(old) in head
        assert body == old
        assert _get(server.url + KMOD.url_path()) == new


def test_stop_closes_idle_connections_breaks_stuck_downloads_and_joins(fleet: Fleet) -> None:
    big = _publish_big(fleet, 32 * 1024 * 1024)
    server = DriverServer(Store(fleet.root), ("127.0.0.1", 0),
                          config=ServerConfig(workers=2, io_timeout=30.0)).start()
    address = server.address
    idle = socket.create_connection(address, timeout=10)
    stuck, _ = _stalled_download(address)
    assert _wait_until(lambda: server.open_connections == 2)

    server.stop(grace=0.5)
    assert idle.recv(100) == b""
    assert _drain(stuck) < len(big)  # the download was broken off, not waited for
    assert not _worker_threads()
    try:
        refused = socket.create_connection(address, timeout=2)
    except ConnectionRefusedError:
        pass
    else:
        refused.close()
        raise AssertionError("still accepting connections after stop()")
    idle.close()
    stuck.close()
    server.stop()  # a second stop is harmless


def test_stop_lets_a_short_request_in_progress_finish(fleet: Fleet) -> None:
    server = DriverServer(Store(fleet.root), ("127.0.0.1", 0),
                          config=ServerConfig(workers=2)).start()
    result: list[bytes] = []
    client = threading.Thread(target=lambda: result.append(
        raw_request(server.address, f"GET {KMOD.url_path()} HTTP/1.1\r\nHost: x\r\n"
                    "Connection: close\r\n\r\n".encode())))
    client.start()
    time.sleep(0.05)
    server.stop(grace=5.0)
    client.join(10)
    if result and result[0]:  # the request was accepted before stop(): it completed whole
        assert status_of(result[0]) == 200
        assert result[0].endswith(fleet.contents[KMOD])


def test_readers_that_stop_reading_hold_no_thread_and_others_are_served(fleet: Fleet) -> None:
    """Ten clients stop reading a 32 MB module mid-way, with one worker and half a minute
    of io_timeout: the rest of their files waits in the loop, not in a thread, so other
    downloads, /healthz and /index.json (a worker's) are answered at once."""
    big = _publish_big(fleet, 32 * 1024 * 1024)
    config = ServerConfig(workers=1, io_timeout=30.0)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        stalled: list[socket.socket] = []
        try:
            for _ in range(10):
                stalled.append(_stalled_download(server.address)[0])
            started = time.monotonic()
            assert _get(server.url + KMOD.url_path()) == big
            assert _get(server.url + "/healthz") == b"ok\n"
            assert b'"artifacts"' in _get(server.url + "/index.json")
            assert time.monotonic() - started < 10  # not io_timeout, nor a stalled turn
            # The stalled ten are still open (the honest clients' may take a moment to go).
            assert _wait_until(lambda: server.open_connections == 10)
        finally:
            for sock in stalled:
                sock.close()


def test_a_reader_that_stops_reading_is_dropped_after_io_timeout(fleet: Fleet) -> None:
    big = _publish_big(fleet, 32 * 1024 * 1024)
    config = ServerConfig(workers=1, io_timeout=0.5)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        stalled, _ = _stalled_download(server.address)
        assert _wait_until(lambda: server.open_connections == 0, timeout=5)
        assert _drain(stalled) < len(big)
        stalled.close()


def test_stop_lets_a_download_in_progress_finish_within_grace(fleet: Fleet) -> None:
    """A 16 MB module still going out to a slow reader when stop() is called: the loop
    keeps sending it for the grace period, and the client gets it whole."""
    big = _publish_big(fleet, 16 * 1024 * 1024)
    server = DriverServer(Store(fleet.root), ("127.0.0.1", 0),
                          config=ServerConfig(workers=2)).start()
    sock, first = _stalled_download(server.address)
    received = bytearray(first)
    stopping = threading.Thread(target=server.stop, kwargs={"grace": 10.0})
    stopping.start()
    while chunk := sock.recv(64 * 1024):
        received += chunk
        time.sleep(0.001)  # slow: the stop comes while most of the file is still to go
    stopping.join(15)
    sock.close()
    assert not stopping.is_alive()
    assert received.endswith(big) and not _worker_threads()


def test_keep_alive_and_pipelining_after_a_file_larger_than_the_socket_buffer(
    fleet: Fleet,
) -> None:
    """Two 8 MB downloads and a /healthz pipelined on one connection, read slowly: each
    answer whole and in order, then the connection serves another request."""
    big = _publish_big(fleet, 8 * 1024 * 1024)
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0),
                      config=ServerConfig(workers=1)) as server:
        sock = socket.create_connection(server.address, timeout=10)
        one = f"GET {KMOD.url_path()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        sock.sendall(one * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        expected = 2 * len(big) + len(b"ok\n")
        received = bytearray()
        while received.count(b"HTTP/1.1 200 OK") < 3 or not received.endswith(b"ok\n"):
            chunk = sock.recv(256 * 1024)
            assert chunk, "the server closed a keep-alive connection"
            received += chunk
            time.sleep(0.0005)
        assert len(received) > expected
        first = received.index(big)
        assert received.index(big, first + len(big)) > first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        tail = b""
        while chunk := sock.recv(4096):
            tail += chunk
        assert tail.startswith(b"HTTP/1.1 200 OK") and tail.endswith(b"ok\n")
        sock.close()
