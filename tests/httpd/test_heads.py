"""Request heads parsed by ``httpd.heads``: what is accepted, and what is refused with
which status (pure; the socket-level answers are in test_http)."""

from __future__ import annotations

import io

import pytest

from reconciler.httpd import heads
from reconciler.httpd.server import DriverServer
from tests.httpd.fleet import raw_request, status_of


def _parse(data: bytes) -> heads.RequestHead | None:
    stream = io.BytesIO(data)
    return heads.parse(stream.readline(), stream.readline)


def test_a_loaders_head_is_parsed_with_case_insensitive_fields() -> None:
    head = _parse(b"GET /a/b.ko HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"abc\"\r\n"
                  b"range: bytes=0-9\r\n\r\n")
    assert head is not None
    assert (head.method, head.target, head.version) == ("GET", "/a/b.ko", "HTTP/1.1")
    assert head.headers.get("if-none-match") == '"abc"'
    assert head.headers.get("Range") == "bytes=0-9" and "RANGE" in head.headers
    assert head.headers.get("Absent") is None and head.headers.get("Absent", "d") == "d"
    assert head.keep_alive


@pytest.mark.parametrize(("fields", "keep"), [
    (b"", False), (b"Connection: keep-alive\r\n", True), (b"Connection: Keep-Alive, x\r\n", True),
])
def test_http_1_0_keeps_the_connection_only_when_asked(fields: bytes, keep: bool) -> None:
    head = _parse(b"GET / HTTP/1.0\r\n" + fields + b"\r\n")
    assert head is not None and head.keep_alive is keep


def test_connection_close_ends_an_http_1_1_connection() -> None:
    head = _parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert head is not None and not head.keep_alive


def test_the_first_of_repeated_fields_is_the_value_and_bare_lf_is_accepted() -> None:
    head = _parse(b"GET //x//y HTTP/1.1\nAccept: a\nAccept: b\n\n")
    assert head is not None
    assert head.headers.get("Accept") == "a" and head.target == "/x//y"


def test_an_empty_request_line_is_no_request() -> None:
    assert _parse(b"\r\n") is None


@pytest.mark.parametrize(("data", "status"), [
    (b"HELLO\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9: no version
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / FTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1\r\n\r\n", 400),
    (b"GET / HTTP/1.x\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nName : v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n: v\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n", 431),
    # Non-ASCII and control bytes in a field: refused, never decoded into a crash later
    # (a signature compared with hmac.compare_digest, a Content-Length of "\xb2").
    ("POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode(), 400),
    ("POST / HTTP/1.1\r\nX-Reconciler-Signature: sha256=\u00e9\r\n\r\n".encode(), 400),
    (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
])
def test_unclear_heads_are_refused(data: bytes, status: int) -> None:
    with pytest.raises(heads.HeadError) as refused:
        _parse(data)
    assert refused.value.status == status


def test_repeats_that_agree_are_accepted() -> None:
    head = _parse(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n")
    assert head is not None and head.headers.get("Content-Length") == "0"


@pytest.mark.parametrize(("data", "status"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"GET /\r\n\r\n", 400),
])
def test_the_server_answers_a_refused_head_and_closes(server: DriverServer, data: bytes,
                                                      status: int) -> None:
    reply = raw_request(server.address, data)  # reads to EOF: the server closed
    assert status_of(reply) == status and b"Connection: close" in reply
