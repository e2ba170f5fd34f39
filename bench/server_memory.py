"""RSS of the driver server over 10,000 requests (the issue's target: growth < 10 MB).

Our server runs as its own process (``reconciler serve``); 8 client threads send a mix of
what it meets in life: whole 3 MB downloads on keep-alive connections, ranges, HEAD,
revalidations (304), hostile paths (404/400), ``/index.json``, ``/healthz`` and new
connections. RSS is read from /proc after a warm-up and after the 10,000 requests.

    .venv/bin/python bench/server_memory.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers  # the helper beside this script (sys.path above)

_SINK = bytearray(1 << 20)


def _drain(reply: http.client.HTTPResponse) -> int:
    total = 0
    view = memoryview(_SINK)
    while count := reply.readinto(view):
        total += count
    return total


def client(host: str, port: int, numbers: range, errors: list[str], etag: str) -> None:
    path = _servers.KEY.url_path()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for number in numbers:
        kind = number % 10
        headers: dict[str, str] = {}
        method, target = "GET", path
        if kind == 4:
            headers["Range"] = f"bytes={number % 1000}-{number % 1000 + 65535}"
        elif kind == 5:
            method = "HEAD"
        elif kind == 6:
            headers["If-None-Match"] = etag
        elif kind == 7:
            target = "/2.0.0%2Bdriver/x86_64/%2e%2e%2f%2e%2e%2f" + str(number)
        elif kind == 8:
            target = "/index.json"
        elif kind == 9:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            target = "/healthz"
        try:
            conn.request(method, target, headers=headers)
            reply = conn.getresponse()
            _drain(reply)
            if reply.status >= 500:
                errors.append(f"{target}: {reply.status}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{target}: {exc!r}")
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.close()


def run_requests(base: str, total: int, threads: int, etag: str) -> list[str]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    errors: list[str] = []
    workers = [
        threading.Thread(target=client,
                         args=(host, int(port), range(i, total, threads), errors, etag))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with _servers.workdir() as work:
        store = _servers.make_store(work)
        digest = (store / (_servers.KEY.relpath + ".sha256")).read_text().split()[0]
        etag = f'"{digest}"'
        with _servers.ours(store, work) as (base, pid):
            errors = run_requests(base, 1000, args.threads, etag)  # warm-up: caches, threads
            before = _servers.rss_kib(pid)
            errors += run_requests(base, args.requests, args.threads, etag)
            after = _servers.rss_kib(pid)
    growth_mb = (after - before) / 1024
    print(f"requests: {args.requests} (+1000 warm-up), client threads: {args.threads}")
    print(f"RSS after warm-up: {before / 1024:.1f} MB")
    print(f"RSS after {args.requests} requests: {after / 1024:.1f} MB")
    print(f"growth: {growth_mb:.2f} MB (target < 10 MB): {'met' if growth_mb < 10 else 'NOT met'}")
    print(f"client errors: {len(errors)}", *errors[:5], sep="\n  ")
    return 0 if growth_mb < 10 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
