"""HTTP to upstream driver repositories: the one place that talks to them.

One ``Client`` per ``model.upstreams.Upstream``, built from its settings alone:

- its ``headers`` and the ``Authorization: Basic`` of its ``basic_auth_file`` (one line,
  ``user:password``, read when the client is made: once a pass) go on every request; a
  redirect to another origin drops ``Authorization``, so a mirror that redirects to a CDN
  never hands it our password;
- ``ca_bundle`` is the only trust for https when given (else the system's);
- ``timeout`` bounds the connect and every read, so a server that accepts and never answers
  costs one timeout, not a hung pass;
- the proxy variables (``http_proxy``, ``https_proxy``, ``no_proxy``) are honoured as urllib
  reads them; an https URL goes through the proxy by ``CONNECT``, so the CA bundle still
  checks the origin's own certificate and the origin still sees our headers;
- redirects are followed at most ``MAX_REDIRECTS`` times, and only to http(s).

``download`` streams a file into a handle, resuming with ``Range`` (``If-Range`` on the first
answer's validator) after the connection dropped mid-body, as long as each attempt made
progress; a ``Content-Range`` that does not continue where we stopped is refused, a ``200``
to a range request restarts from byte 0. Everything urllib, http.client, ssl and socket
raise becomes an ``UpstreamError`` (or ``ArtifactRejected``: too big, the wrong size) here,
once; callers never see a foreign exception.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from reconciler.errors import ArtifactRejected, ConfigError, UpstreamError
from reconciler.model.upstreams import Upstream

MAX_REDIRECTS = 5
MAX_ARTIFACT_BYTES = 256 << 20  # a module is a few MB; anything near this is not one
RESUME_ATTEMPTS = 4
USER_AGENT = "falco-reconciler"
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Answer:
    """A status, its headers (names in lower case) and, for a small GET, the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value is not None and value.isdigit() else None


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(  # noqa: PLR0917 - urllib's signature, overridden
            self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: Any, newurl: str) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if target.scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"to {target.scheme}: only http(s)",
                                         headers, fp)
        follow = super().redirect_request(req, fp, code, msg, headers, newurl)
        if follow is not None and _origin(newurl) != _origin(req.full_url):
            follow.remove_header("Authorization")
        return follow


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def _basic_auth(upstream: Upstream) -> str | None:
    if upstream.basic_auth_file is None:
        return None
    try:
        line = upstream.basic_auth_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"upstream {upstream.name}: cannot read basic_auth_file "
                          f"{upstream.basic_auth_file}: {exc.strerror}") from exc
    if ":" not in line or "\n" in line:
        raise ConfigError(f"upstream {upstream.name}: basic_auth_file "
                          f"{upstream.basic_auth_file} must hold one line user:password")
    return "Basic " + base64.b64encode(line.encode("utf-8")).decode("ascii")


def _tls(upstream: Upstream) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            cafile=str(upstream.ca_bundle) if upstream.ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"upstream {upstream.name}: cannot read ca_bundle "
                          f"{upstream.ca_bundle}: {exc}") from exc


def _reason(exc: BaseException, timeout: float) -> str:
    """One readable phrase for what went wrong on the wire."""
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(inner, ssl.SSLError):
        return f"TLS failed: {getattr(inner, 'reason', None) or inner}"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, http.client.HTTPException):
        return f"no valid HTTP answer ({type(inner).__name__})"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner) or type(inner).__name__


_WIRE_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


class Client:
    """Requests to one upstream, with its headers, auth, CA bundle and timeout."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._headers = {"User-Agent": USER_AGENT, **dict(upstream.headers)}
        auth = _basic_auth(upstream)
        if auth is not None:
            self._headers["Authorization"] = auth
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(),  # the environment's proxies, and no_proxy
            urllib.request.HTTPSHandler(context=_tls(upstream)),
            _Redirects(),
        )

    def url(self, path: str) -> str:
        """The upstream's URL for ``path`` (already encoded, starting with ``/``)."""
        return self.upstream.url + path

    @contextlib.contextmanager
    def _open(self, method: str, url: str,
              headers: Mapping[str, str] | None = None) -> Iterator[Any]:
        """The response (an ``HTTPError`` for a status >= 300 after redirects is returned
        too, as a response: callers look at ``.status``); wire errors translated."""
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise UpstreamError(f"{method} {url}: only http(s) is fetched")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, method=method, headers={**self._headers, **(headers or {})})
        try:
            response = self._opener.open(request, timeout=self.upstream.timeout)
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400 and exc.code != 304:
                exc.close()
                raise UpstreamError(f"{method} {url}: redirect not followed: {exc.msg}") from exc
            response = exc
        except _WIRE_ERRORS as exc:
            raise UpstreamError(f"{method} {url}: "
                                f"{_reason(exc, self.upstream.timeout)}") from exc
        with contextlib.closing(response):
            yield response

    def head(self, url: str) -> Answer:
        """What a ``HEAD`` answers: any status, never raised."""
        with self._open("HEAD", url) as response:
            return Answer(_status(response), _headers(response))

    def get_small(self, url: str, *, limit: int, etag: str | None = None) -> Answer:
        """A ``GET`` of a small document (an index, a checksum file), at most ``limit``
        bytes, conditional on ``etag``; a 304 or an error status comes back as is."""
        extra = {"If-None-Match": etag} if etag else {}
        with self._open("GET", url, extra) as response:
            status = _status(response)
            if status != 200:
                return Answer(status, _headers(response))
            try:
                body = response.read(limit + 1)
            except _WIRE_ERRORS as exc:
                raise UpstreamError(f"GET {url}: "
                                    f"{_reason(exc, self.upstream.timeout)}") from exc
            if len(body) > limit:
                raise UpstreamError(f"GET {url}: larger than {limit} bytes")
            return Answer(status, _headers(response), body)

    def download(self, url: str, handle: BinaryIO, *, max_bytes: int = MAX_ARTIFACT_BYTES,
                 expected_size: int | None = None, attempts: int = RESUME_ATTEMPTS) -> int:
        """Stream ``url`` into ``handle`` (empty, seekable); returns the size written.
        Resumes a dropped body with ``Range`` while attempts make progress."""
        have = 0
        validator: str | None = None
        total: int | None = None
        tried = 0
        while True:
            tried += 1
            before = have
            try:
                total, validator = self._attempt(url, handle, have, validator, total, max_bytes,
                                                 expected_size)
                have = handle.tell()
                if total is None or have == total:
                    return have
                why = f"GET {url}: the connection closed after {have} of {total} bytes"
            except UpstreamError as exc:
                have = handle.tell()
                if isinstance(exc, ArtifactRejected) or not isinstance(
                        exc.__cause__, _WIRE_ERRORS):
                    raise
                why = str(exc)
            if have == before or tried >= attempts:
                raise UpstreamError(f"{why} ({tried} attempt{'s' if tried > 1 else ''})")
            time.sleep(0.05 * tried)

    def _attempt(  # noqa: PLR0917 - one resumed request's whole state
        self, url: str, handle: BinaryIO, have: int, validator: str | None,
        total: int | None, max_bytes: int, expected_size: int | None,
    ) -> tuple[int | None, str | None]:
        """One request: from byte ``have`` on; returns the full size if known and the
        validator a resume must name."""
        extra = {}
        if have:
            extra["Range"] = f"bytes={have}-"
            if validator:
                extra["If-Range"] = validator
        with self._open("GET", url, extra) as response:
            status = _status(response)
            headers = _headers(response)
            if have and status == 206:
                start, size = _content_range(headers.get("content-range"))
                if start != have or (total is not None and size not in (None, total)):
                    raise UpstreamError(
                        f"GET {url}: Content-Range {headers.get('content-range')!r} does not "
                        f"continue at byte {have} of the same file")
                total = size if size is not None else total
            elif status == 200:
                handle.seek(0)
                handle.truncate()
                length = headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                etag = headers.get("etag")
                validator = etag if etag and not etag.startswith("W/") else headers.get(
                    "last-modified")
            else:
                raise ArtifactRejected(f"GET {url} answered {status}")
            if total is not None and total > max_bytes:
                raise ArtifactRejected(f"GET {url}: {total} bytes, over the {max_bytes} "
                                       "bytes an artifact may have")
            if total is not None and expected_size is not None and total != expected_size:
                raise ArtifactRejected(f"GET {url}: {total} bytes, but its upstream states "
                                       f"{expected_size}")
            self._copy(url, response, handle, max_bytes)
        return total, validator

    def _copy(self, url: str, response: Any, handle: BinaryIO, max_bytes: int) -> None:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except _WIRE_ERRORS as exc:
                handle.flush()
                raise UpstreamError(f"GET {url}: "
                                    f"{_reason(exc, self.upstream.timeout)}") from exc
            if not chunk:
                return
            if handle.tell() + len(chunk) > max_bytes:
                raise ArtifactRejected(f"GET {url}: more than the {max_bytes} bytes an "
                                       "artifact may have")
            handle.write(chunk)


def _status(response: Any) -> int:
    return int(getattr(response, "status", None) or response.code)


def _headers(response: Any) -> dict[str, str]:
    found = response.headers if response.headers is not None else {}
    return {name.lower(): value for name, value in found.items()}


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes a-b/N``: (a, N); N is None for ``*``; (None, None) if malformed."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if match is None:
        return None, None
    return int(match[1]), None if match[3] == "*" else int(match[3])
