"""The server under abuse (issue 20.3): each attack reproduced on loopback, the safe
outcome asserted. Attackers connect from 127.0.0.2, honest clients from 127.0.0.1 (both
loopback; Linux answers the whole 127/8), so per-address rules can tell them apart."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from tests.httpd.fleet import ALL_KEYS, KMOD, Fleet, content_for, raw_request, status_of

ROOT = Path(__file__).resolve().parents[2]
ATTACKER = "127.0.0.2"


def _attacker(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(address, timeout=timeout, source_address=(ATTACKER, 0))


def _get(address: tuple[str, int], target: str) -> bytes:
    return raw_request(address, f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode(),
                       timeout=10)


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (read to EOF, or reset)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


@contextlib.contextmanager
def _serving(fleet: Fleet, **limits: float) -> Iterator[DriverServer]:
    config = ServerConfig(workers=2, host_arch="x86_64", **limits)  # type: ignore[arg-type]
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
        yield server


def test_one_address_cannot_take_every_connection(fleet: Fleet) -> None:
    """10,000 idle connections from one address refused every honest client; now an
    address holds at most its share, the rest are told 503 with Retry-After."""
    with _serving(fleet, max_connections=100, max_per_client=10) as server:
        held = [_attacker(server.address) for _ in range(30)]
        try:
            refused = []
            for sock in held[10:]:
                sock.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                refused.append(sock.recv(4096))
            assert all(status_of(r) == 503 and b"Retry-After: 1" in r for r in refused)
            assert status_of(_get(server.address, "/healthz")) == 200
        finally:
            for sock in held:
                sock.close()


def test_a_trickled_head_gets_no_more_than_header_timeout_oversized_or_not(
        fleet: Fleet) -> None:
    """A head's deadline starts at its first byte: trickling more bytes never extends it,
    and a head past the size limit is refused at once."""
    with _serving(fleet, header_timeout=0.5) as server:
        with _attacker(server.address) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 60_000)
            with contextlib.suppress(OSError):
                for _ in range(200):  # a byte every 50 ms: far past header_timeout
                    slow.sendall(b"a")
                    time.sleep(0.05)
            assert _closed(slow)
        with _attacker(server.address) as big:
            big.sendall(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 80_000)
            assert status_of(big.recv(4096)) == 431


def test_trickling_oversized_heads_do_not_starve_the_workers(fleet: Fleet) -> None:
    """Eight connections sending oversized heads a byte at a time held every worker;
    now heads are gathered by the loop, and workers get only whole requests."""
    with _serving(fleet, header_timeout=60.0) as server:
        slow = [_attacker(server.address) for _ in range(8)]
        try:
            for sock in slow:
                sock.sendall(b"GET /index.json HTTP/1.1\r\nX-Pad: " + b"a" * 60_000)
            for sock in slow:
                sock.sendall(b"a")
            index = json.loads(_get(server.address, "/index.json").split(b"\r\n\r\n", 1)[1])
            assert len(index["artifacts"]) == len(ALL_KEYS)
        finally:
            for sock in slow:
                sock.close()


def test_partial_heads_beyond_the_buffer_budget_are_refused(fleet: Fleet) -> None:
    """9,900 partial 69 KB heads took 789 MB; heads held at once are now bounded."""
    with _serving(fleet, buffer_budget=1 << 20, header_timeout=60.0) as server:
        socks = [_attacker(server.address) for _ in range(40)]
        try:
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 60_000)
            replies = []
            for sock in socks:
                sock.settimeout(0.5)
                try:
                    replies.append(sock.recv(4096))
                except TimeoutError:
                    replies.append(b"")  # still held: within the budget
            refused = [r for r in replies if r.startswith(b"HTTP/1.1 503")]
            assert len(refused) >= 40 - (1 << 20) // 60_000
            assert status_of(_get(server.address, "/healthz")) == 200
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize(("field", "status"), [
    (b"Range: bytes=" + b"1" * 5000 + b"-", 200),  # malformed: ignored, the whole file
    (b"Range: bytes=0-" + b"9" * 5000, 200),
    ("If-None-Match: \u00e9".encode(), 400),
    ("X-Reconciler-Signature: \u00b2".encode(), 400),
])
def test_malformed_numbers_and_non_ascii_fields_never_crash(fleet: Fleet, field: bytes,
                                                             status: int) -> None:
    with _serving(fleet) as server:
        reply = raw_request(server.address, b"GET " + KMOD.url_path().encode() +
                            b" HTTP/1.1\r\nConnection: close\r\n" + field + b"\r\n\r\n")
        assert status_of(reply) == status
        assert status_of(_get(server.address, "/healthz")) == 200


def _serve_process(fleet: Fleet, *, nofile: int | None = None) -> tuple[
        subprocess.Popen[str], tuple[str, int]]:
    """``reconciler serve`` in a process of its own, logs as they are off a terminal
    (no --log-format), optionally with a hard descriptor limit (prlimit)."""
    argv = [sys.executable, "-m", "reconciler.cli", "serve", "--store", str(fleet.root),
            "--listen", "127.0.0.1:0"]
    if nofile is not None:
        argv = ["prlimit", f"--nofile={nofile}:{nofile}", *argv]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
    assert match, "serve did not print its address"
    return proc, ("127.0.0.1", int(match[1]))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


@pytest.mark.parametrize("nofile", [128, 64])
def test_out_of_descriptors_is_503_never_404_nor_a_shorter_index(fleet: Fleet,
                                                                 nofile: int) -> None:
    """Under a 1024-descriptor limit 600 stalled downloads made the server answer 404 for
    modules it had and list an empty index, and EMFILE turned accept into a busy loop of
    ~30,000 log lines a second. Here: a 128- or 64-descriptor limit, 150 stalled downloads."""
    big = fleet.root.parent / "big.ko"  # larger than socket buffers: a stalled reader
    big.write_bytes(content_for(KMOD, 32 << 20))  # holds its file open
    Store(fleet.root).publish(KMOD, big)
    proc, address = _serve_process(fleet, nofile=nofile)
    stalled: list[socket.socket] = []
    try:
        for _ in range(150):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((ATTACKER, 0))
            sock.settimeout(2)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                break
            sock.sendall(f"GET {KMOD.url_path()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            stalled.append(sock)
        answers = []
        for target in (KMOD.url_path(), "/index.json") * 5:
            try:
                answers.append((target, _get(address, target)))
            except OSError:
                continue  # refused before a reply: not a wrong answer either
        assert answers
        for target, reply in answers:
            assert status_of(reply) in (200, 503), reply[:200]
            if status_of(reply) == 503:
                assert b"Retry-After:" in reply
            elif target == "/index.json":
                body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
                assert len(body["artifacts"]) == len(ALL_KEYS)
        time.sleep(1.0)  # exhausted for a while: the log must stay quiet
    finally:
        for sock in stalled:
            sock.close()
        err = _stop(proc)
    lines = err.splitlines()
    assert len(lines) < 400, f"{len(lines)} log lines"
    assert not any('"status": 404' in line for line in lines)


def test_only_json_lines_reach_the_log_off_a_terminal(fleet: Fleet) -> None:
    """Crash inputs once put a plain-text traceback in the JSON log stream."""
    proc, address = _serve_process(fleet)
    try:
        for data in (b"GET " + KMOD.url_path().encode() + b" HTTP/1.1\r\nRange: bytes=" +
                     b"1" * 5000 + b"-\r\nConnection: close\r\n\r\n",
                     b"POST /v1/build-requests HTTP/1.1\r\nContent-Length: " + b"9" * 5000 +
                     b"\r\n\r\n",
                     "POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode(),
                     b"\x00\xff\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"):
            with contextlib.suppress(OSError):
                raw_request(address, data)
    finally:
        err = _stop(proc)
    assert err.strip()
    for line in err.splitlines():
        json.loads(line)  # each line a JSON document, nothing else


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match
    return int(match[1])


def test_memory_held_by_partial_heads_is_bounded_and_returned(fleet: Fleet) -> None:
    """9,900 partial 69 KB heads took RSS from 52 to 789 MB, never given back. Here 1,500
    partial 60 KB heads (90 MB sent) against the default 64 MB budget."""
    proc, address = _serve_process(fleet)
    socks: list[socket.socket] = []
    try:
        before = _rss_kib(proc.pid)
        pad = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 60_000
        for n in range(1500):
            sock = socket.create_connection(address, timeout=10,
                                            source_address=(f"127.0.{n // 200 + 1}.9", 0))
            with contextlib.suppress(OSError):
                sock.sendall(pad)
            socks.append(sock)
        time.sleep(1.0)  # let the server read what was sent
        held = _rss_kib(proc.pid)
        for sock in socks:
            sock.close()
        socks.clear()
        deadline = time.monotonic() + 10
        after = _rss_kib(proc.pid)
        while after > before + 40_000 and time.monotonic() < deadline:
            time.sleep(0.2)
            after = _rss_kib(proc.pid)
    finally:
        for sock in socks:
            sock.close()
        _stop(proc)
    assert held - before < 150_000, f"held {held - before} KiB"  # 64 MB budget + overhead
    assert after - before < 40_000, f"{after - before} KiB kept after every close"
