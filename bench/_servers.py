"""Helpers shared by the server benchmarks: a store with one 3 MB module, and the servers.

Each server runs as its own process, so ``wrk`` measures it and nothing else, and each
writes an access log to a file (nginx's and ours), which keeps the comparison fair.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.edges.http import client
from reconciler.edges.store.local import Store
from reconciler.errors import HttpError
from reconciler.model.artifacts import ArtifactKey, DriverKind

ROOT = Path(__file__).resolve().parent.parent
MODULE_SIZE = 3 * 1024 * 1024
KEY = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1", DriverKind.KMOD)


def make_store(base: Path) -> Path:
    store = base / "store"
    source = base / "module.ko"
    source.write_bytes(os.urandom(MODULE_SIZE))
    Store(store).publish(KEY, source)
    return store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = client.get_status(url, timeout=2)
        except HttpError as exc:
            status, why = None, str(exc)
        else:
            why = f"it answered {status}"
        if status is not None and status < 400:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} is not up after {timeout:g} s: {why}")
        time.sleep(0.05)


@contextlib.contextmanager
def _process(argv: list[str], log: Path, **kwargs: object) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                **kwargs)  # type: ignore[call-overload]
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_SERVE_ONLY = """
import argparse, sys
from reconciler import cli, logs
from reconciler.commands import serve
cli.process_policy(one_shot=False)  # what cli.entry gives `reconciler serve`
logs.configure(fmt="json")
top = argparse.ArgumentParser()
serve.register(top.add_subparsers())
args = top.parse_args(["serve", *sys.argv[1:]])
sys.exit(args.handler(args))
"""


@contextlib.contextmanager
def ours(store: Path, work: Path, workers: int | None = None) -> Iterator[tuple[str, int]]:
    """``reconciler serve`` on an ephemeral port: (base URL, pid)."""
    # The serve command alone (not reconciler.cli): the benchmark must not depend on
    # every other command importing cleanly.
    argv = [sys.executable, "-c", _SERVE_ONLY, "--store", str(store), "--listen", "127.0.0.1:0"]
    if workers:
        argv += ["--workers", str(workers)]
    with _process(argv, work / "ours.log", cwd=ROOT) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"reconciler serve did not print its URL: {line!r}")
        url = match[1]
        wait_up(url + "/healthz")
        yield url, proc.pid


@contextlib.contextmanager
def nginx(store: Path, work: Path) -> Iterator[tuple[str, int]]:
    """Debian's nginx, sendfile on, 2 workers, serving the store folder."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = work / "nginx.conf"
    temp = work / "nginx-temp"
    temp.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {store};
    }}
}}
""")
    with _process([binary, "-e", "stderr", "-p", str(work), "-c", str(conf)],
                  work / "nginx.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_up(url + KEY.url_path())
        yield url, proc.pid


@contextlib.contextmanager
def python_http_server(store: Path, work: Path) -> Iterator[tuple[str, int]]:
    """``python -m http.server``: what people run by hand today."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
            str(store), str(port)]
    with _process(argv, work / "http.server.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_up(url + KEY.url_path())
        yield url, proc.pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        yield base
