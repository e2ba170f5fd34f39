"""The upstream protocol: what we ask of an upstream driver repository, over the one HTTP
client (``edges.http.client``), which maps every wire error once.

One ``Client`` per ``model.upstreams.Upstream``, built from its settings alone:

- its ``headers`` and the ``Authorization: Basic`` of its ``basic_auth_file`` (one line,
  ``user:password``, read when the client is made: once a pass) go on every request; a
  redirect to another origin drops all of them (the client's rule), so a mirror that
  redirects to a CDN never hands it our password or API key;
- ``ca_bundle`` is the only trust for https when given (else the system's);
- ``timeout`` bounds the connect and every read, ``deadline`` each whole request and each
  whole download (resumes included), so neither a silent server nor one dripping a byte a
  second holds a pass;
- the proxy variables (``http_proxy``, ``https_proxy``, ``no_proxy``) are honoured as urllib
  reads them; an https URL goes through the proxy by ``CONNECT``, so the CA bundle still
  checks the origin's own certificate and the origin still sees our headers;
- redirects are followed at most ``client.MAX_REDIRECTS`` times, and only to http(s).

``download`` streams a file into a handle, resuming with ``Range`` (``If-Range`` on the first
answer's validator) after the connection dropped mid-body, as long as each attempt made
progress; a ``Content-Range`` that does not continue where we stopped is refused, a ``200``
to a range request restarts from byte 0. Every failure is an ``UpstreamError`` (or
``ArtifactRejected``: too big, the wrong size); callers never see a foreign exception.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from reconciler.edges.http import client
from reconciler.errors import ArtifactRejected, ConfigError, UpstreamError
from reconciler.model.upstreams import Upstream

MAX_ARTIFACT_BYTES = 256 << 20  # a module is a few MB; anything near this is not one
RESUME_ATTEMPTS = 4
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Reply(client.Headed):
    """What an upstream answered: a status, its headers (names in lower case) and, for a
    small GET, the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def json(self, url: str) -> Any:
        """The body as JSON (bounded in depth); an ``UpstreamError`` if it is not."""
        return client.decode_json(self.body, f"GET {url}", UpstreamError)


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


class Client:
    """Requests to one upstream, with its headers, auth, CA bundle, timeout and deadline."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        headers = dict(upstream.headers)
        auth = _basic_auth(upstream)
        if auth is not None:
            headers["Authorization"] = auth
        self._session = client.Session(headers, upstream.ca_bundle, upstream.timeout,
                                       upstream.deadline, error=UpstreamError)
        try:
            self._session.tls()
        except ConfigError as exc:
            raise ConfigError(f"upstream {upstream.name}: ca_bundle: {exc}") from exc

    def url(self, path: str) -> str:
        """The upstream's URL for ``path`` (already encoded, starting with ``/``)."""
        return self.upstream.url + path

    def head(self, url: str) -> Reply:
        """What a ``HEAD`` answers: any status, never raised."""
        with self._session.open("HEAD", url) as answer:
            return Reply(answer.status, answer.headers)

    def get_small(self, url: str, *, limit: int, etag: str | None = None) -> Reply:
        """A ``GET`` of a small document (an index, a checksum file), at most ``limit``
        bytes, conditional on ``etag``; a 304 or an error status comes back as is."""
        extra = {"If-None-Match": etag} if etag else {}
        with self._session.open("GET", url, headers=extra) as answer:
            if answer.status != 200:
                return Reply(answer.status, answer.headers)
            return Reply(answer.status, answer.headers, answer.body(limit))

    def download(self, url: str, handle: BinaryIO, *, max_bytes: int = MAX_ARTIFACT_BYTES,
                 expected_size: int | None = None, attempts: int = RESUME_ATTEMPTS) -> int:
        """Stream ``url`` into ``handle`` (empty, seekable); returns the size written.
        Resumes a dropped body with ``Range`` while attempts make progress, all within
        the upstream's deadline."""
        have = 0
        validator: str | None = None
        total: int | None = None
        tried = 0
        ends = time.monotonic() + self.upstream.deadline
        while True:
            tried += 1
            before = have
            left = ends - time.monotonic()
            if left <= 0:
                raise self._late(url, have, tried - 1)
            try:
                total, validator = self._attempt(url, handle, have, validator, total, max_bytes,
                                                 expected_size, left)
                have = handle.tell()
                if total is None or have == total:
                    return have
                why = (f"GET {client.redacted(url)}: the connection closed after {have} of "
                       f"{total} bytes")
            except UpstreamError as exc:
                have = handle.tell()
                if time.monotonic() >= ends:
                    raise self._late(url, have, tried) from exc
                if isinstance(exc, ArtifactRejected) or not isinstance(
                        exc.__cause__, client.WIRE_ERRORS):
                    raise
                why = str(exc)
            if have == before or tried >= attempts:
                raise UpstreamError(f"{why} ({tried} attempt{'s' if tried > 1 else ''})")
            time.sleep(0.05 * tried)

    def _late(self, url: str, have: int, tried: int) -> UpstreamError:
        return UpstreamError(
            f"GET {client.redacted(url)}: not done within its {self.upstream.deadline:g} s "
            f"deadline ({have} bytes in {tried} attempt{'s' if tried != 1 else ''})")

    def _attempt(  # noqa: PLR0917 - one resumed request's whole state
        self, url: str, handle: BinaryIO, have: int, validator: str | None,
        total: int | None, max_bytes: int, expected_size: int | None, deadline: float,
    ) -> tuple[int | None, str | None]:
        """One request: from byte ``have`` on; returns the full size if known and the
        validator a resume must name."""
        extra = {}
        if have:
            extra["Range"] = f"bytes={have}-"
            if validator:
                extra["If-Range"] = validator
        with self._session.open("GET", url, headers=extra, deadline=deadline) as answer:
            headers = answer.headers
            if have and answer.status == 206:
                start, size = _content_range(headers.get("content-range"))
                if start != have or (total is not None and size not in (None, total)):
                    raise answer.fail(
                        f"Content-Range {headers.get('content-range')!r} does not continue "
                        f"at byte {have} of the same file")
                total = size if size is not None else total
            elif answer.status == 200:
                handle.seek(0)
                handle.truncate()
                total = answer.length
                etag = headers.get("etag")
                validator = etag if etag and not etag.startswith("W/") else headers.get(
                    "last-modified")
            else:
                raise answer.fail(f"answered {answer.status}", ArtifactRejected)
            if total is not None and total > max_bytes:
                raise answer.fail(f"{total} bytes, over the {max_bytes} bytes an artifact "
                                  "may have", ArtifactRejected)
            if total is not None and expected_size is not None and total != expected_size:
                raise answer.fail(f"{total} bytes, but its upstream states {expected_size}",
                                  ArtifactRejected)
            try:
                client.copy(answer, handle, max_bytes=max_bytes, too_big=ArtifactRejected,
                            whole=False)  # a body cut short is resumed by download
            finally:
                handle.flush()
        return total, validator


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes a-b/N``: (a, N); N is None for ``*``; (None, None) if malformed."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if match is None:
        return None, None
    return int(match[1]), None if match[3] == "*" else int(match[3])
