"""The connection state machine, driven by hand over a real loopback TCP connection
(no loop).

The site is a fake ``Site`` (the core's own Protocol) that answers every request with its
method and body, so each test reads what the connection did off the client's socket and
the ``Next`` it returned.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.edges.store.local import OpenFile
from reconciler.httpd.config import ServerConfig
from reconciler.httpd.connection import HEAD_LIMIT, Connection, Next, Phase, head_end
from reconciler.httpd.heads import RequestHead
from reconciler.httpd.messages import Admission, Request, Response, text

CONFIG = ServerConfig(workers=1, header_timeout=5.0, io_timeout=5.0, idle_timeout=30.0)


@dataclass
class EchoSite:
    """Answers ``<METHOD> <body>``; POST bodies of Content-Length are read first; a
    GET of ``/file`` sends ``file``; ``/work`` goes to a worker."""

    file: Path | None = None
    seen: list[Request] = field(default_factory=list)

    def admit(self, head: RequestHead) -> Admission:
        if head.method == "POST":
            return Admission(body_length=int(head.headers.get("Content-Length", "0")))
        return Admission(on_loop=head.target != "/work")

    def respond(self, request: Request) -> Response:
        self.seen.append(request)
        if request.head.target == "/file" and self.file is not None:
            size = self.file.stat().st_size
            opened = OpenFile(os.open(self.file, os.O_RDONLY), "file", size, 0.0, "x")
            return Response(200, (("Content-Length", str(size)),), file=opened,
                            count=size)
        return text(200, f"{request.head.method} {request.body.decode()}\n")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The server's and the client's end of one TCP connection on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _peer = listener.accept()
    yield server, client
    server.close()
    client.close()


def _conn(server: socket.socket, site: EchoSite) -> Connection:
    return Connection(server, "192.0.2.1", site, CONFIG)


def _reply(client: socket.socket) -> bytes:
    return client.recv(1 << 20)


@pytest.mark.parametrize(("data", "end"), [
    (b"GET / HTTP/1.1\r\n\r\nGET", 18), (b"GET / HTTP/1.1\n\nX", 16),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", -1), (b"", -1),
])
def test_head_end_finds_the_empty_line(data: bytes, end: int) -> None:
    assert head_end(data) == end


def test_a_whole_head_is_answered_and_the_connection_kept(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.readable() is Next.READ and conn.phase is Phase.IDLE
    reply = _reply(client)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"GET \n")
    assert b"Connection: close" not in reply


def test_a_head_in_pieces_keeps_the_deadline_of_its_first_byte(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A client trickling its head cannot extend header_timeout byte by byte."""
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET / HT")
    assert conn.readable() is Next.READ and conn.phase is Phase.HEAD
    first = conn.deadline
    client.sendall(b"TP/1.1\r\n")
    assert conn.readable() is Next.READ and conn.deadline == first
    client.sendall(b"\r\n")
    assert conn.readable() is Next.READ and _reply(client).startswith(b"HTTP/1.1 200")


def test_a_body_is_read_whole_then_answered(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    site = EchoSite()
    conn = _conn(server, site)
    client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    assert conn.readable() is Next.READ and conn.phase is Phase.BODY
    client.sendall(b"cde")
    assert conn.readable() is Next.WORK and conn.pending is not None
    assert conn.pending.body == b"abcde"
    assert conn.worked(conn.respond(conn.pending)) is Next.READ
    assert _reply(client).endswith(b"POST abcde\n")


def test_a_body_that_does_not_arrive_in_time_gets_408(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert conn.readable() is Next.READ
    conn.expired()  # what the loop calls once the deadline has passed
    assert _reply(client).startswith(b"HTTP/1.1 408 ")


def test_pipelined_requests_are_answered_in_order(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                   b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert conn.readable() is Next.WORK  # the POST goes to a worker...
    assert conn.pending is not None
    assert conn.worked(conn.respond(conn.pending)) is Next.CLOSE  # ...then /c, and close
    reply = b""
    while reply.count(b"HTTP/1.1 200") < 3 or not reply.endswith(b"GET \n"):
        reply += _reply(client)
    assert reply.index(b"GET \n") < reply.index(b"POST hi\n") < reply.rindex(b"GET \n")
    assert reply.count(b"Connection: close") == 1


def test_an_oversized_head_is_431_and_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET / HTTP/1.1\r\nX: " + b"y" * HEAD_LIMIT)
    step = Next.READ
    while step is Next.READ:
        step = conn.readable()
    assert step is Next.CLOSE
    assert _reply(client).startswith(b"HTTP/1.1 431 ")


def test_a_refused_head_is_answered_and_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET / HTTP/2.0\r\n\r\n")
    assert conn.readable() is Next.CLOSE
    reply = _reply(client)
    assert reply.startswith(b"HTTP/1.1 505 ") and b"Connection: close" in reply


def test_a_file_larger_than_the_socket_takes_waits_for_write_then_goes_on(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    server, client = pair
    data = os.urandom(4 << 20)
    path = tmp_path / "big"
    path.write_bytes(data)
    conn = _conn(server, EchoSite(file=path))
    client.sendall(b"GET /file HTTP/1.1\r\n\r\n")
    assert conn.readable() is Next.WRITE and conn.phase is Phase.SENDING
    received = b""
    step = Next.WRITE
    while step is Next.WRITE:
        received += client.recv(1 << 20)
        step = conn.writable()
    assert step is Next.READ
    while not received.endswith(data):
        received += client.recv(1 << 20)
    assert received.endswith(data) and received.startswith(b"HTTP/1.1 200 OK")


def test_close_releases_the_buffers_and_the_socket(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _conn(server, EchoSite())
    client.sendall(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 1000)
    assert conn.readable() is Next.READ
    conn.close()
    assert server.fileno() == -1
    assert client.recv(10) == b""
