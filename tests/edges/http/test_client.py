"""The one HTTP client over real sockets on loopback: whatever a server sends, every use
(download, probe, POST) raises our own error; a whole exchange has a deadline; JSON from
outside is bounded; a redirect to another origin carries none of our secrets; a URL with
credentials in it is refused and never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.edges.http import client, deadlines
from reconciler.errors import ConfigError, HttpError, JsonError
from reconciler.model import jsondoc
from tests.support import upstreams as ups

NOT_HTTP = r"no valid HTTP answer \(BadStatusLine\)"


def test_a_server_answering_garbage_is_our_error_in_every_use(tmp_path: Path) -> None:
    """Before: http.client.BadStatusLine escaped download, get_status and post."""
    with ups.raw_server(ups.garbage) as (url, heads):
        with pytest.raises(HttpError, match=NOT_HTTP):
            client.download(url + "/linux-headers.deb", tmp_path / "headers.deb")
        with pytest.raises(HttpError, match=NOT_HTTP):
            client.get_status(url + "/healthz")
        with pytest.raises(HttpError, match=NOT_HTTP):
            client.head_status(url + "/driver.ko")
        with pytest.raises(HttpError, match=NOT_HTTP):
            client.post_json(url + "/alert", b"{}")
    assert len(heads) == 4  # each really asked the server


def test_a_body_cut_short_of_its_length_is_our_error(tmp_path: Path) -> None:
    def short(conn: object) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")  # type: ignore[attr-defined]

    with ups.raw_server(short) as (url, _heads), pytest.raises(HttpError, match="90 bytes short"):
        client.download(url + "/f", tmp_path / "f")


def test_a_dripping_body_stops_at_the_deadline_not_at_the_read_timeout(tmp_path: Path) -> None:
    """Each byte comes well within the 2 s read timeout; only the whole-exchange deadline
    can stop it (the body would take 200 s)."""
    with ups.raw_server(ups.dripping(b"x" * 1000)) as (url, _heads), \
            pytest.raises(HttpError, match=r"not done within its 1 s deadline"):
        client.download(url + "/f", tmp_path / "f", timeout=2, deadline=1)


def test_a_dripping_head_stops_at_the_deadline_too() -> None:
    session = client.Session(timeout=2, deadline=1)
    with ups.raw_server(ups.dripping(b"", in_head=True)) as (url, _heads), \
            pytest.raises(HttpError, match=r"not done within its 1 s deadline"), \
            session.open("GET", url + "/f"):
        pass


def test_json_is_bounded_in_size_and_depth() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    body = json.dumps({"artifacts": [{"path": "a[{", "url": "]]"}]}).encode()

    def serve(data: bytes) -> object:
        def answer(conn: object) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"  # type: ignore[attr-defined]
                         % (len(data), data))
        return answer

    session = client.Session(timeout=5)
    with ups.raw_server(serve(deep)) as (url, _h), session.open("GET", url + "/i") as answer, \
            pytest.raises(HttpError, match=r"not valid JSON: nested 100000 deep"):
        answer.json(1 << 20)
    with ups.raw_server(serve(deep)) as (url, _h), session.open("GET", url + "/i") as answer, \
            pytest.raises(HttpError, match=r"larger than 1000 bytes"):
        answer.json(1000)
    with ups.raw_server(serve(body)) as (url, _h), session.open("GET", url + "/i") as answer:
        assert answer.json(1 << 20) == json.loads(body)  # brackets in strings do not count
    with pytest.raises(JsonError, match="Expecting value"):
        jsondoc.loads(b"{\"a\": }")


def test_a_redirect_to_another_origin_drops_authorization_and_custom_headers() -> None:
    secret = {"Authorization": "Bearer t0ken", "X-Api-Key": "k3y"}
    with (ups.file_server(ups.Behaviour(files={"/f": b"data"})) as (other, other_seen),
          ups.file_server(ups.Behaviour(files={"/here": b"data"})) as (mirror, seen)):
        seen.redirects = {"/same": "/here", "/away": other + "/f"}
        session = client.Session(headers=secret, timeout=5)
        for path in ("/same", "/away"):
            with session.open("GET", mirror + path) as answer:
                assert answer.body(100) == b"data"
    for _method, _path, headers in seen.requests:  # the mirror's origin gets them all
        assert (headers["authorization"], headers["x-api-key"]) == ("Bearer t0ken", "k3y")
    [(_method, path, headers)] = other_seen.requests
    assert path == "/f"
    assert "authorization" not in headers
    assert "x-api-key" not in headers
    assert headers["user-agent"] == client.USER_AGENT


def test_a_url_with_credentials_is_refused_unsent_and_never_shown(tmp_path: Path) -> None:
    with ups.raw_server(ups.garbage) as (url, heads):
        with_password = url.replace("http://", "http://mirror:s3cret@")
        for use in (lambda: client.download(with_password, tmp_path / "f"),
                    lambda: client.get_status(with_password),
                    lambda: client.post_json(with_password, b"{}")):
            with pytest.raises(HttpError, match="credentials in a URL are refused") as caught:
                use()
            assert "s3cret" not in str(caught.value)
            assert "***@127.0.0.1" in str(caught.value)
        # A redirect to one is refused too, and its password is not shown.
        with ups.file_server() as (mirror, seen):
            seen.redirects = {"/r": with_password + "/f"}
            with pytest.raises(HttpError, match="redirect not followed") as caught:
                client.head_status(mirror + "/r")
            assert "s3cret" not in str(caught.value)
    assert heads == []  # nothing was sent to it


def test_an_unreadable_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle"):
        client.Session(ca_bundle=tmp_path / "absent.pem").tls()


def test_exchanges_done_in_time_leave_no_pile_of_deadlines() -> None:
    """Each HEAD of a survey registers a deadline; those done in time are pruned, so a
    daemon asking thousands of HEADs a pass does not grow without bound."""
    with ups.file_server(ups.Behaviour(files={"/f": b"x"})) as (url, _seen):
        for _ in range(3000):
            assert client.head_status(url + "/f") == 200
    assert len(deadlines._WATCHDOG._due) <= 2048
