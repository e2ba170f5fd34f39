"""The loop: several sites on their own addresses, workers, deadlines and stopping.

Real sockets on loopback; the sites are small fakes of the core's ``Site`` Protocol, one
of which blocks in its worker until released, to show what the loop does meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.httpd.config import ServerConfig
from reconciler.httpd.heads import RequestHead
from reconciler.httpd.loop import Loop
from reconciler.httpd.messages import Admission, Request, Response, text
from tests.httpd.fleet import raw_request, status_of

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NamedSite:
    """Answers its name; ``/slow`` goes to a worker and waits for ``release``."""

    name: str
    release: threading.Event = field(default_factory=threading.Event)

    def admit(self, head: RequestHead) -> Admission:
        return Admission(on_loop=head.target != "/slow")

    def respond(self, request: Request) -> Response:
        if request.head.target == "/slow":
            self.release.wait(10)
        return text(200, f"{self.name}\n")


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop(ServerConfig(workers=1, header_timeout=0.5, idle_timeout=30.0))
    thread = threading.Thread(target=running.run, name="httpd-test-loop")
    thread.start()
    yield running
    running.stop(grace=0.5)
    thread.join()


def _get(address: tuple[str, int], target: str) -> bytes:
    return raw_request(address, f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())


def _address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


def test_each_address_serves_its_own_site(loop: Loop) -> None:
    first = _address(loop.listen(("127.0.0.1", 0), NamedSite("one")))
    second = _address(loop.listen(("127.0.0.1", 0), NamedSite("two")))
    assert _get(first, "/").endswith(b"one\n")
    assert _get(second, "/").endswith(b"two\n")


def test_a_busy_worker_does_not_hold_the_loop(loop: Loop) -> None:
    """The only worker is stuck; requests answered on the loop still are."""
    site = NamedSite("s")
    address = _address(loop.listen(("127.0.0.1", 0), site))
    slow = socket.create_connection(address, timeout=10)
    slow.sendall(b"GET /slow HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert _get(address, "/quick").endswith(b"s\n")
    site.release.set()
    assert slow.recv(4096).startswith(b"HTTP/1.1 200")
    slow.close()


def test_unlisten_stops_one_address_and_keeps_the_other(loop: Loop) -> None:
    kept = _address(loop.listen(("127.0.0.1", 0), NamedSite("kept")))
    dropped_sock = loop.listen(("127.0.0.1", 0), NamedSite("dropped"))
    dropped = _address(dropped_sock)
    loop.unlisten(dropped_sock)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(dropped, timeout=5)
    assert status_of(_get(kept, "/")) == 200


def test_a_partial_head_is_dropped_at_the_header_deadline(loop: Loop) -> None:
    address = _address(loop.listen(("127.0.0.1", 0), NamedSite("s")))
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert sock.recv(100) == b""


def test_stop_joins_the_workers_and_closes_every_socket() -> None:
    loop = Loop(ServerConfig(workers=2))
    listener = loop.listen(("127.0.0.1", 0), NamedSite("s"))
    thread = threading.Thread(target=loop.run)
    thread.start()
    idle = socket.create_connection(_address(listener), timeout=5)
    idle.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")  # accepted, and now idle
    loop.stop(grace=0.5)
    thread.join()
    assert idle.recv(10) == b""
    assert listener.fileno() == -1
    assert not [t for t in threading.enumerate() if t.name.startswith("httpd-worker")]
    idle.close()


@dataclass
class StuckForOne:
    """Every request goes to a worker; those of ``stuck`` block until ``release``."""

    stuck: str
    release: threading.Event = field(default_factory=threading.Event)

    def admit(self, head: RequestHead) -> Admission:
        return Admission(on_loop=False)

    def respond(self, request: Request) -> Response:
        if request.client == self.stuck:
            self.release.wait(10)
        return text(200, "done\n")


def test_one_client_cannot_hold_every_worker() -> None:
    """A client whose requests never finish holds at most half the workers; the others
    keep answering everyone else."""
    loop = Loop(ServerConfig(workers=2))
    site = StuckForOne("127.0.0.2")
    address = _address(loop.listen(("127.0.0.1", 0), site))
    thread = threading.Thread(target=loop.run)
    thread.start()
    greedy = []
    try:
        for _ in range(4):
            sock = socket.create_connection(address, timeout=10,
                                            source_address=("127.0.0.2", 0))
            sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            greedy.append(sock)
        assert _get(address, "/").endswith(b"done\n")  # from 127.0.0.1
        site.release.set()
        assert all(sock.recv(4096).startswith(b"HTTP/1.1 200") for sock in greedy)
    finally:
        site.release.set()
        for sock in greedy:
            sock.close()
        loop.stop(grace=0.5)
        thread.join()


_LOW_LIMIT_SERVER = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
from reconciler import logs
from reconciler.httpd.config import ServerConfig
from reconciler.httpd.loop import Loop
from reconciler.httpd.messages import Admission, text
class Ok:
    def admit(self, head): return Admission(on_loop=True)
    def respond(self, request): return text(200, "ok\\n")
logs.configure(level="info", fmt="json")
logs.get("test").info("starting")  # as a server logs http.listening before it serves
loop = Loop(ServerConfig(workers=1, max_connections=1000, max_per_client=1000))
sock = loop.listen(("127.0.0.1", 0), Ok())
print(sock.getsockname()[1], flush=True)
loop.run()
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_accept_answers_503_and_does_not_spin() -> None:
    """EMFILE on accept left the connection in the backlog, so epoll reported it again at
    once: a busy loop logging ~30,000 lines a second. Now the reserve descriptor answers
    one waiting client 503 and accepting pauses. The server runs in a process of its own
    with a 48-descriptor limit and a connection cap above it."""
    proc = subprocess.Popen([sys.executable, "-c", _LOW_LIMIT_SERVER], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        address = ("127.0.0.1", int(proc.stdout.readline()))
        for _ in range(80):  # more than the server has descriptors for
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            held.append(sock)
        replies = []
        for sock in held[-20:]:
            with contextlib.suppress(OSError):
                replies.append(sock.recv(4096))
        assert any(r.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in r for r in replies)
        assert all(r.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")) for r in replies if r)
        before = _cpu_seconds(proc.pid)
        time.sleep(2.0)  # still out of descriptors, clients still waiting in the backlog
        assert _cpu_seconds(proc.pid) - before < 1.0  # a busy loop would take ~2 s
    finally:
        for sock in held:
            sock.close()
        proc.kill()
        _out, err = proc.communicate(timeout=10)
    exhausted = [line for line in err.splitlines() if "http.descriptors_exhausted" in line]
    assert exhausted and len(exhausted) < 20
