"""Status probes: the real prober over real loopback HTTP (a HEAD, a GET, an error status,
nothing listening), and the fake's table, turns and refusals the deploy tests rely on."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from reconciler.edges.http.probe import HttpProber
from reconciler.errors import HttpError
from reconciler.testing import FakeProber


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server: /healthz answers 200, anything else 404; it records each
    request as 'METHOD path'."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            body = b"ok"
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        do_GET = do_HEAD = _answer  # noqa: N815 - the names http.server dispatches to

        def log_message(self, *_args: object) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_real_prober_asks_with_the_method_and_returns_any_status(
    server: tuple[str, list[str]],
) -> None:
    url, seen = server
    prober = HttpProber()
    assert prober.status("GET", url + "/healthz", 2.0) == 200
    assert prober.status("HEAD", url + "/driver.ko", 2.0) == 404  # an error status is an answer
    assert seen == ["GET /healthz", "HEAD /driver.ko"]


def test_the_real_prober_raises_when_nothing_answers() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}/healthz"
    with pytest.raises(HttpError, match=f"^GET {url}: connection refused"):
        HttpProber().status("GET", url, 2.0)


def test_the_fake_answers_its_table_in_turn_and_refuses_the_rest() -> None:
    prober = FakeProber({"http://a/healthz": [503, 200], "http://a/x": 404})
    assert [prober.status("GET", "http://a/healthz", 1) for _ in range(3)] == [503, 200, 200]
    assert prober.status("HEAD", "http://a/x", 1) == 404
    with pytest.raises(HttpError, match="connection refused"):
        prober.status("GET", "http://b/", 1)
    assert prober.asked[-2:] == [("HEAD", "http://a/x"), ("GET", "http://b/")]
    assert FakeProber(default=200).status("HEAD", "http://anything/", 1) == 200
