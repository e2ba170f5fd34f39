"""The upstream HTTP client over real sockets: what it sends, where it follows, how it
resumes, and that every failure arrives as our own error."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from reconciler.edges.http import upstream
from reconciler.errors import ArtifactRejected, ConfigError, UpstreamError
from reconciler.model.upstreams import Upstream
from tests.support import upstreams as ups

BODY = bytes(range(256)) * 2000  # 512000 bytes


def test_headers_and_basic_auth_go_with_every_request(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.write_text("mirror:s3cret\n")
    with ups.file_server(ups.Behaviour(files={"/f": BODY})) as (url, seen):
        client = upstream.Client(Upstream(url, headers=(("X-Team", "sec"),), basic_auth_file=auth))
        assert client.head(url + "/f").status == 200
        handle = io.BytesIO()
        assert client.download(url + "/f", handle) == len(BODY)
    assert handle.getvalue() == BODY
    for _method, _path, headers in seen.requests:
        assert headers["x-team"] == "sec"
        assert headers["authorization"] == "Basic bWlycm9yOnMzY3JldA=="


def test_an_unreadable_auth_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="basic_auth_file"):
        upstream.Client(Upstream("http://127.0.0.1:1", basic_auth_file=tmp_path / "absent"))


def test_a_redirect_keeps_auth_on_its_origin_and_drops_it_elsewhere(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.write_text("u:p")
    with (ups.file_server(ups.Behaviour(files={"/f": BODY})) as (cdn, cdn_seen),
          ups.file_server(ups.Behaviour(files={"/here": BODY})) as (mirror, seen)):
        seen.redirects = {"/same": "/here", "/away": cdn + "/f"}
        client = upstream.Client(Upstream(mirror, basic_auth_file=auth))
        client.download(mirror + "/same", io.BytesIO())
        client.download(mirror + "/away", io.BytesIO())
    assert [r[2].get("authorization") for r in seen.requests] == ["Basic dTpw"] * 3
    assert [r[1] for r in cdn_seen.requests] == ["/f"]
    assert "authorization" not in cdn_seen.requests[0][2]


def test_redirects_are_followed_within_a_limit_and_only_to_http() -> None:
    with ups.file_server() as (url, seen):
        seen.redirects = {f"/r{i}": f"/r{i + 1}" for i in range(10)}
        seen.redirects["/ftp"] = "ftp://127.0.0.1/f"
        seen.redirects["/file"] = "file:///etc/passwd"
        client = upstream.Client(Upstream(url))
        assert client.head(url + "/r5").status == 404  # 5 hops to /r10, which is not there
        with pytest.raises(UpstreamError, match="redirect not followed"):
            client.head(url + "/r4")  # 6 hops
        for path, scheme in (("/ftp", "ftp"), ("/file", "file")):
            # urllib refuses file: itself; we refuse every other scheme but http(s).
            with pytest.raises(UpstreamError, match=f"to {scheme}: only http|'{scheme}:"):
                client.head(url + path)


def test_a_server_that_never_answers_times_out() -> None:
    with ups.hanging() as url:
        client = upstream.Client(Upstream(url, timeout=0.5))
        start = time.monotonic()
        with pytest.raises(UpstreamError, match=r"no answer within 0.5 s"):
            client.head(url + "/f")
    assert time.monotonic() - start < 3


def test_a_refused_connection_is_our_error() -> None:
    url = ups.refused()
    with pytest.raises(UpstreamError, match="connection refused"):
        upstream.Client(Upstream(url)).head(url + "/f")


def test_a_dropped_download_resumes_with_range() -> None:
    with ups.file_server(ups.Behaviour(files={"/f": BODY}, cut_first=100_000)) as (url, seen):
        handle = io.BytesIO()
        size = upstream.Client(Upstream(url)).download(url + "/f", handle)
    assert (size, handle.getvalue() == BODY) == (len(BODY), True)
    gets = [headers for method, _p, headers in seen.requests if method == "GET"]
    assert len(gets) == 2
    assert gets[1]["range"] == "bytes=100000-"
    assert gets[1]["if-range"].startswith('"')  # the first answer's strong ETag


def test_a_range_answered_from_elsewhere_is_refused() -> None:
    behaviour = ups.Behaviour(files={"/f": BODY}, cut_first=100_000, wrong_range_start=True)
    with ups.file_server(behaviour) as (url, _seen), pytest.raises(
            UpstreamError, match="does not continue at byte 100000"):
        upstream.Client(Upstream(url)).download(url + "/f", io.BytesIO())


def test_a_server_that_ignores_range_starts_over() -> None:
    behaviour = ups.Behaviour(files={"/f": BODY}, cut_first=100_000, ignore_range=True)
    with ups.file_server(behaviour) as (url, _seen):
        handle = io.BytesIO()
        upstream.Client(Upstream(url)).download(url + "/f", handle)
    assert handle.getvalue() == BODY


def test_resuming_stops_after_a_few_attempts() -> None:
    # Every answer is cut after 1000 bytes: each resume makes progress, and still it stops.
    gone = r"closed after 4000 of 512000 bytes \(4 attempts\)$"
    with ups.file_server(ups.Behaviour(files={"/f": BODY}, cut_every=1000)) as (url, seen), \
            pytest.raises(UpstreamError, match=gone):
        upstream.Client(Upstream(url)).download(url + "/f", io.BytesIO())
    assert len(seen.requests) == 4


def test_an_attempt_without_progress_is_not_retried() -> None:
    with ups.hanging() as url:
        start = time.monotonic()
        with pytest.raises(UpstreamError, match=r"/f: no answer within 0.5 s \(1 attempt\)$"):
            upstream.Client(Upstream(url, timeout=0.5)).download(url + "/f", io.BytesIO())
    assert time.monotonic() - start < 1.5


def test_size_cap_and_stated_size_are_enforced() -> None:
    with ups.file_server(ups.Behaviour(files={"/f": BODY})) as (url, _seen):
        client = upstream.Client(Upstream(url))
        with pytest.raises(ArtifactRejected, match="over the 1000 bytes"):
            client.download(url + "/f", io.BytesIO(), max_bytes=1000)
        with pytest.raises(ArtifactRejected, match="states 5"):
            client.download(url + "/f", io.BytesIO(), expected_size=5)


def test_https_trusts_the_ca_bundle_only(tmp_path: Path) -> None:
    cert, key = ups.self_signed(tmp_path)
    with ups.file_server(ups.Behaviour(files={"/f": b"x"}), tls=(cert, key)) as (url, _seen):
        with pytest.raises(UpstreamError, match="TLS failed"):
            upstream.Client(Upstream(url)).head(url + "/f")
        assert upstream.Client(Upstream(url, ca_bundle=cert)).head(url + "/f").status == 200


def test_the_proxy_variables_are_honoured_with_our_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = tmp_path / "auth"
    auth.write_text("u:p")
    # The proxy answers for a host that does not resolve: only a proxied request arrives.
    with ups.file_server(ups.Behaviour(files={"http://drivers.invalid/f": b"via proxy"})) as (
            proxy, seen):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        handle = io.BytesIO()
        upstream.Client(Upstream("http://drivers.invalid", basic_auth_file=auth)).download(
            "http://drivers.invalid/f", handle)
    assert handle.getvalue() == b"via proxy"
    assert seen.requests[0][1] == "http://drivers.invalid/f"
    assert seen.requests[0][2]["authorization"] == "Basic dTpw"


def test_small_documents_are_conditional_and_bounded() -> None:
    with ups.file_server(ups.Behaviour(files={"/index.json": b"{}"})) as (url, seen):
        client = upstream.Client(Upstream(url))
        first = client.get_small(url + "/index.json", limit=100)
        assert (first.status, first.body) == (200, b"{}")
        etag = first.header("ETag")
        assert etag
        assert client.get_small(url + "/index.json", limit=100, etag=etag).status in (200, 304)
        assert seen.requests[1][2]["if-none-match"] == etag
        with pytest.raises(UpstreamError, match="larger than 1 bytes"):
            client.get_small(url + "/index.json", limit=1)


def test_https_through_a_tunnelling_proxy_still_checks_the_origin_and_sends_our_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = ups.self_signed(tmp_path)
    auth = tmp_path / "auth"
    auth.write_text("u:p")
    with (ups.file_server(ups.Behaviour(files={"/f": BODY}), tls=(cert, key)) as (url, seen),
          ups.connect_proxy() as (proxy, asked)):
        monkeypatch.setenv("https_proxy", proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with pytest.raises(UpstreamError, match="TLS failed"):
            upstream.Client(Upstream(url)).head(url + "/f")  # the origin's CA is not the system's
        handle = io.BytesIO()
        upstream.Client(Upstream(url, ca_bundle=cert, basic_auth_file=auth)).download(
            url + "/f", handle)
    assert handle.getvalue() == BODY
    assert asked == [url.removeprefix("https://")] * 2
    assert seen.requests[-1][2]["authorization"] == "Basic dTpw"


def test_a_redirect_elsewhere_drops_the_upstreams_custom_headers_too(tmp_path: Path) -> None:
    """Issue 20.4: an X-Api-Key meant for the mirror never reaches the CDN it redirects to."""
    auth = tmp_path / "auth"
    auth.write_text("u:p")
    with (ups.file_server(ups.Behaviour(files={"/f": BODY})) as (cdn, cdn_seen),
          ups.file_server() as (mirror, seen)):
        seen.redirects = {"/away": cdn + "/f"}
        client = upstream.Client(Upstream(mirror, headers=(("X-Api-Key", "k3y"),),
                                          basic_auth_file=auth))
        assert client.download(mirror + "/away", io.BytesIO()) == len(BODY)
    assert seen.requests[0][2]["x-api-key"] == "k3y"
    [(_method, _path, headers)] = cdn_seen.requests
    assert "x-api-key" not in headers
    assert "authorization" not in headers


def test_a_dripping_download_stops_at_the_upstreams_deadline_and_is_not_resumed() -> None:
    """Each byte comes within the 1 s read timeout; the whole download has 1 s."""
    with ups.raw_server(ups.dripping(BODY)) as (url, heads):
        client = upstream.Client(Upstream(url, timeout=1, deadline=1))
        handle = io.BytesIO()
        with pytest.raises(UpstreamError, match=r"not done within its 1 s deadline"):
            client.download(url + "/f", handle)
    assert len(heads) == 1  # the deadline is the whole download's: no resume after it
    assert 0 < len(handle.getvalue()) < len(BODY)


def test_a_server_answering_garbage_is_an_upstream_error() -> None:
    with ups.raw_server(ups.garbage) as (url, _heads):
        with pytest.raises(UpstreamError, match=r"no valid HTTP answer \(BadStatusLine\)"):
            upstream.Client(Upstream(url)).head(url + "/f")
        with pytest.raises(UpstreamError, match=r"no valid HTTP answer \(BadStatusLine\)"):
            upstream.Client(Upstream(url)).download(url + "/f", io.BytesIO())
