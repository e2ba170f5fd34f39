"""Honest clients while the server is abused: latency with 10,000 idle and 500 stalled
connections held, beside the same without them.

One ``reconciler serve`` process on a store with one 3 MB module. An honest client on
127.0.0.1 makes ``--requests`` requests, each on a new connection as a booting host's
loader does (``GET`` of the module's ``.sha256`` and of ``/healthz``, alternating), and
the p50/p99 latency is taken: first with nothing else going on, then while ``--idle``
connections that never send a byte and ``--stalled`` downloads of the module that never
read are held, spread over source addresses 127.0.1.x-127.0.255.x (so the per-address cap
does not simply refuse them). Prints both and the ratio. Traffic is on loopback only,
bounded in count, and every socket has a timeout. The soft descriptor limit is raised to
the hard one first (the server inherits it); with a hard limit too low for the held
connections the bench says so and stops.

    .venv/bin/python bench/server_abuse.py [--idle 10000] [--stalled 500] [--requests 500]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers  # the helper beside this script (sys.path above)

_PER_ADDRESS = 100  # held connections per source address


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"the hard descriptor limit is {hard}; this bench needs {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"descriptor limit: soft {soft} -> {hard}")


def _source(n: int) -> str:
    block = n // _PER_ADDRESS
    return f"127.0.{block // 250 + 1}.{block % 250 + 2}"


def _latencies(address: tuple[str, int], count: int) -> list[float]:
    targets = (_servers.KEY.url_path() + ".sha256", "/healthz")
    taken = []
    for n in range(count):
        request = f"GET {targets[n % 2]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        started = time.perf_counter()
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(request.encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        taken.append((time.perf_counter() - started) * 1000)
        if not reply.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"honest request answered {reply[:40]!r}")
    return taken


def _summary(label: str, taken: list[float]) -> tuple[float, float]:
    ordered = sorted(taken)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label:<28} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(taken)} requests)")
    return p50, p99


@contextlib.contextmanager
def _held(address: tuple[str, int], idle: int, stalled: int) -> Iterator[None]:
    socks: list[socket.socket] = []
    try:
        for n in range(idle):
            sock = socket.socket()
            sock.settimeout(10)
            sock.bind((_source(n), 0))
            sock.connect(address)
            socks.append(sock)
        request = f"GET {_servers.KEY.url_path()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for n in range(idle, idle + stalled):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # never drained
            sock.settimeout(10)
            sock.bind((_source(n), 0))
            sock.connect(address)
            sock.sendall(request)
            socks.append(sock)
        time.sleep(1.0)  # the server has taken them all in
        print(f"holding {idle} idle and {stalled} stalled connections")
        yield
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--stalled", type=int, default=500)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    args.idle = min(args.idle, 50_000)  # bounded whatever is asked
    args.stalled = min(args.stalled, 5_000)
    args.requests = min(args.requests, 10_000)
    _raise_nofile(args.idle + args.stalled + 256)
    with _servers.workdir() as work, _servers.ours(_servers.make_store(work), work) as served:
        url, _pid = served
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        _latencies(address, 50)  # warm up
        quiet = _summary("honest, server otherwise idle", _latencies(address, args.requests))
        with _held(address, args.idle, args.stalled):
            abused = _summary("honest, under abuse", _latencies(address, args.requests))
    print(f"ratio under abuse / quiet: p50 {abused[0] / quiet[0]:.2f}   "
          f"p99 {abused[1] / quiet[1]:.2f}")


if __name__ == "__main__":
    main()
