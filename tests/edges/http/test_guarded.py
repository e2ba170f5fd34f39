"""``edges.http.guarded``: downloads a manifest named, over real loopback sockets. The
host's policy is checked on the address connected to at every hop: loopback and
169.254.169.254 are refused before any request unless a range allows them, a redirect from
an allowed server to a refused address is refused, non-http schemes and URLs with
credentials are refused, a body over the size cap is refused before it is read, and no
proxy from the environment is used (its address would be the one checked, not the URL's)."""

from __future__ import annotations

import io
import ipaddress

import pytest

from reconciler.edges.http import guarded
from reconciler.errors import HttpError
from reconciler.model.netpolicy import STRICT, UrlPolicy
from tests.support.upstreams import Behaviour, file_server, garbage, raw_server

LOOPBACK = UrlPolicy((ipaddress.ip_network("127.0.0.1/32"),))


def test_loopback_and_metadata_are_refused_before_any_request() -> None:
    with file_server(Behaviour(files={"/h.deb": b"headers"})) as (url, how):
        with pytest.raises(HttpError, match=r"refused 127\.0\.0\.1: 127\.0\.0\.1 is loopback"):
            guarded.download(url + "/h.deb", io.BytesIO(), policy=STRICT, timeout=5)
        assert how.requests == []
    with pytest.raises(HttpError, match=r"169\.254\.169\.254 is link-local \(cloud metadata"):
        guarded.download("http://169.254.169.254/latest/meta-data/", io.BytesIO(),
                         policy=STRICT, timeout=5)


def test_an_allowed_range_downloads_and_a_redirect_out_of_it_is_refused() -> None:
    files = {"/h.deb": b"headers" * 1000}
    redirects = {"/moved": "/h.deb", "/away": "http://127.0.0.2:9/h.deb",
                 "/meta": "http://169.254.169.254/latest/"}
    with file_server(Behaviour(files=files, redirects=redirects)) as (url, how):
        out = io.BytesIO()
        assert guarded.download(url + "/moved", out, policy=LOOPBACK, timeout=5) == 7000
        assert out.getvalue() == files["/h.deb"]
        with pytest.raises(HttpError, match=r"127\.0\.0\.2 is loopback"):
            guarded.download(url + "/away", io.BytesIO(), policy=LOOPBACK, timeout=5)
        with pytest.raises(HttpError, match=r"169\.254\.169\.254 is link-local"):
            guarded.download(url + "/meta", io.BytesIO(), policy=LOOPBACK, timeout=5)
        assert [path for _m, path, _h in how.requests] == ["/moved", "/h.deb", "/away", "/meta"]


def test_the_size_cap_holds() -> None:
    with file_server(Behaviour(files={"/big": b"x" * 5000})) as (url, _how):
        small = UrlPolicy(LOOPBACK.allow, max_bytes=4096)
        with pytest.raises(HttpError, match="5000 bytes is over the limit of 4096"):
            guarded.download(url + "/big", io.BytesIO(), policy=small, timeout=5)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x",
                                 "http://user:pw@example.org/x"])
def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(HttpError, match="refused"):
        guarded.download(url, io.BytesIO(), policy=STRICT, timeout=5)


def test_the_environments_proxy_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain client honours http_proxy; under a policy the connection goes to the
    address the policy checked, so the proxy (a garbage server here) is never asked."""
    with raw_server(garbage) as (proxy, asked), \
            file_server(Behaviour(files={"/h.deb": b"headers"})) as (url, how):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        out = io.BytesIO()
        assert guarded.download(url + "/h.deb", out, policy=LOOPBACK, timeout=5) == 7
        assert out.getvalue() == b"headers"
        assert [path for _m, path, _h in how.requests] == ["/h.deb"]
    assert asked == []
