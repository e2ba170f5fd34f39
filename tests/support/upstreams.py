"""Upstreams for tests, all real sockets: a small file server that can misbehave on
purpose (corrupt bytes, a body cut short, ranges ignored or answered wrong, redirects,
an https listener), a port that accepts and never answers, Debian's nginx with basic auth,
and driver files that pass the checks a fetched file is held to."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.model import versions
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.driverfile import EM_BPF, EM_X86_64
from tests.support.elf import make_elf, probe_identity_sections

PAD = 200_000  # big enough that a body cut at its middle is a real partial download


def driver_bytes(key: ArtifactKey, *, release: str | None = None,
                 identity: tuple[str, str] | None = None, pad: int = PAD) -> bytes:
    """A real ELF object that verifies as ``key`` (a module with vermagic ``release`` or
    the key's, or a probe), carrying its driver version's identity unless given. A
    module's .modinfo also holds what the stand-in kernel reads (``version=``)."""
    required = versions.required_identity(key.driver_version)
    assert required is not None or identity is not None
    api, schema = identity or (str(required.api), str(required.schema))  # type: ignore[union-attr]
    filler = hashlib.sha256(key.relpath.encode()).digest() * (pad // 32)
    if key.kind is DriverKind.KMOD:
        fields = (f"license=GPL\0version={key.driver_version}\0name=falco\0"
                  f"vermagic={release or key.kernel_release} SMP mod_unload \0"
                  f"api_version={api}\0schema_version={schema}\0")
        return make_elf(EM_X86_64, {".text": filler, ".modinfo": fields.encode()})
    return make_elf(EM_BPF, {"prog": filler, **probe_identity_sections(api, schema)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Behaviour:
    """How the file server answers; tests change it while it runs."""

    files: dict[str, bytes] = field(default_factory=dict)  # URL path (encoded) -> body
    corrupt: bool = False  # flip a byte in every body
    cut_first: int | None = None  # the first GET of each path stops after this many bytes
    cut_every: int | None = None  # every answer's body stops after this many bytes
    ignore_range: bool = False  # answer every range request with the whole file (200)
    wrong_range_start: bool = False  # answer a range with one that starts elsewhere
    redirects: dict[str, str] = field(default_factory=dict)  # URL path -> Location
    status: int | None = None  # answer every request with this status
    failing: dict[str, int] = field(default_factory=dict)  # URL path -> status to answer
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _cut: set[str] = field(default_factory=set)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        how = self.server.behaviour
        how.requests.append((self.command, self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}))
        status = how.failing.get(self.path, how.status)
        if status is not None:
            self._send(status, b"", head=head)
            return
        if self.path in how.redirects:
            self._send(302, b"", head=head, extra={"Location": how.redirects[self.path]})
            return
        body = how.files.get(self.path)
        if body is None:
            self._send(404, b"not found\n", head=head)
            return
        if how.corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        wanted = self.headers.get("Range")
        if wanted and not how.ignore_range and self.headers.get("If-Range") in (None, etag):
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            shown = start + 7 if how.wrong_range_start else start
            self._send(206, body[start:], head=head, extra={
                "ETag": etag, "Content-Range": f"bytes {shown}-{len(body) - 1}/{len(body)}"},
                cut=how.cut_every)
            return
        cut = how.cut_every
        if self.command == "GET" and how.cut_first is not None and self.path not in how._cut:
            how._cut.add(self.path)
            cut = how.cut_first
        self._send(200, body, head=head, extra={"ETag": etag}, cut=cut)

    def _send(self, status: int, body: bytes, *, head: bool,
              extra: dict[str, str] | None = None, cut: int | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@contextlib.contextmanager
def file_server(behaviour: Behaviour | None = None, *,
                tls: tuple[Path, Path] | None = None) -> Iterator[tuple[str, Behaviour]]:
    """A file server on 127.0.0.1 (https with ``tls`` = (cert, key)): its URL and how it
    behaves."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = behaviour or Behaviour()
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server.behaviour
    finally:
        server.shutdown()
        server.server_close()


def layout(keys: dict[ArtifactKey, bytes]) -> dict[str, bytes]:
    """The files of a repository in the store layout (URL-encoded paths, no sidecars)."""
    return {key.url_path(): data for key, data in keys.items()}


@contextlib.contextmanager
def hanging() -> Iterator[str]:
    """The URL of a port that accepts connections (the kernel's backlog) and never
    answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def refused() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl binary."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


def htpasswd_line(user: str, password: str) -> str:
    """One line of an nginx user file, in its ``{SHA}`` scheme (no apache2-utils needed)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


@contextlib.contextmanager
def nginx(root: Path, work: Path, users: Path) -> Iterator[str]:
    """Debian's nginx serving ``root`` behind basic auth (``users``): a corporate mirror."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is needed: apt-get install -y nginx-light (.ci/setup)")
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    temps = "\n".join(f"    {name}_temp_path {work}/{name};"
                      for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
{temps}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        auth_basic "drivers";
        auth_basic_user_file {users};
    }}
}}
""")
    with (work / "nginx.out").open("wb") as out:
        proc = subprocess.Popen([binary, "-e", "stderr", "-p", str(work), "-c", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()
            except urllib.error.HTTPError:
                break  # 401: it is up
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((work / "nginx.out").read_text()) from None
                time.sleep(0.05)
            else:
                break
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy that only tunnels (``CONNECT``), as corporate proxies do for https:
    its URL and the targets it was asked for. It sees no byte of what goes through."""
    asked: list[str] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def tunnel(client: socket.socket) -> None:
        with client:
            head = _read_head(client)
            if head is None:
                return
            method, target = head.split(b" ", 2)[:2]
            if method != b"CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            asked.append(target.decode())
            host, _, port = target.decode().rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as origin:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=pipe, args=(origin, client), daemon=True)
                back.start()
                pipe(client, origin)
                back.join(10)

    with _listening(tunnel) as url:
        yield url, asked


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[tuple[str, list[bytes]]]:
    """A listener on 127.0.0.1 that reads each request's head and then lets ``answer``
    write whatever bytes it likes (not HTTP, HTTP a byte at a time...): its URL and the
    heads it was sent."""
    heads: list[bytes] = []

    def one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = _read_head(conn)
            if head is None:
                return
            heads.append(head)
            answer(conn)

    with _listening(one) as url:
        yield url, heads


def _read_head(conn: socket.socket) -> bytes | None:
    """A request's head, up to its blank line; None if the client went before it."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        head += chunk
    return head


@contextlib.contextmanager
def _listening(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A listener on 127.0.0.1 handing each connection to ``handle`` in a thread of its
    own: its URL, while the block runs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _addr = listener.accept()
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def garbage(conn: socket.socket) -> None:
    """Answer with bytes that are not an HTTP status line (http.client: BadStatusLine)."""
    conn.sendall(b"SSH-2.0-OpenSSH_9.2 not http at all\r\n\r\n")


def dripping(body: bytes, *, every: float = 0.2, in_head: bool = False,
             ) -> Callable[[socket.socket], None]:
    """Answer 200 with ``body``, one byte per ``every`` seconds (the head too with
    ``in_head``), each byte well within any read timeout, until the client goes."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()

    def answer(conn: socket.socket) -> None:
        if not in_head:
            conn.sendall(head)
        for byte in (head if in_head else b"") + body:
            conn.sendall(bytes([byte]))
            time.sleep(every)

    return answer
