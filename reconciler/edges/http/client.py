"""HTTP as a client: the one module that imports ``urllib.request``, ``http.client`` and
``ssl`` to ask anything of the network (upstreams, the readiness probe, header and source
downloads, alerts, build requests).

One ``Session`` says how an origin is reached: extra headers, the CA bundle, the timeout
of each connect and read, the deadline of each whole exchange, the schemes allowed and the
error class raised. ``Session.open`` yields a ``Response`` whose reads stay within both.

- Errors are mapped in ONE place (``_reason``): ``URLError``, ``http.client.HTTPException``
  (``BadStatusLine``, ``IncompleteRead``...), ``ssl.SSLError``, socket errors and timeouts,
  and malformed, oversized or too deeply nested JSON all become the session's error class
  (``HttpError`` or ``UpstreamError``) with one readable sentence. Nothing foreign escapes.
- The deadline covers the whole exchange, headers and body, not one read: a watch shuts
  the connection's socket down when it passes, so a server dripping a byte a second costs
  at most the deadline.
- A redirect to another origin carries none of our headers but the harmless ones
  (``_KEPT_ACROSS_ORIGINS``): no ``Authorization``, no ``X-Api-Key``.
- A URL with credentials in it (``http://user:pass@host``) is refused, and every URL this
  module puts in a message is ``redacted`` first.
- A session given ``admit`` (an address policy, ``edges.http.guarded``) resolves each
  connection's host itself, refuses unless every address passes, and connects to exactly
  the address it checked, at every redirect hop and never through a proxy; the TLS name
  check and ``Host`` stay the URL's.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from reconciler.edges.http.deadlines import Watch
from reconciler.errors import ConfigError, HttpError, JsonError, ReconcilerError
from reconciler.model import jsondoc
from reconciler.model.urls import has_credentials, origin, redacted

__all__ = ["Response", "Session", "download", "get_status", "head_status",
           "post", "post_json", "redacted"]

MAX_REDIRECTS = 5
USER_AGENT = "falco-reconciler"
HTTP_ONLY = ("http", "https")
_CHUNK = 1 << 20
# Headers a redirect to another origin may carry on: they say nothing secret.
_KEPT_ACROSS_ORIGINS = frozenset({"user-agent", "accept", "range", "if-range",
                                  "if-none-match", "if-modified-since"})


Admit = Callable[[str], "str | None"]  # an address -> why it may not be reached, or None
Pin = Callable[[str, int], str]  # host, port -> the one address to connect to


class _Watched:
    """A connection that hands its socket to the exchange's watch once connected, and
    (given ``pin``) connects to the one address ``pin`` chose for its host."""

    sock: Any
    host: str
    port: int

    def __init__(self, *args: Any, watch: Watch, pin: Pin | None, **kwargs: Any) -> None:
        self._watch = watch
        self._pin = pin
        super().__init__(*args, **kwargs)

    def connect(self) -> None:
        if self._pin is not None:
            address = self._pin(self.host, self.port)

            def to_address(_where: tuple[str, int], *rest: Any) -> socket.socket:
                return socket.create_connection((address, self.port), *rest)

            # http.client's own seam for opening the socket (kept for its tests): the TLS
            # wrap and the Host header that follow still use the URL's host.
            self._create_connection = to_address
        super().connect()  # type: ignore[misc]  # http.client's, by the MRO below
        self._watch.add(self.sock)


class _HTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _Request(urllib.request.Request):
    """A request that carries its exchange's watch to the connection it opens."""

    watch: Watch


def _watch_of(req: urllib.request.Request) -> Watch:
    return getattr(req, "watch", None) or Watch(None)


def _pinned(host: str, port: int, *, admit: Admit, error: type[ReconcilerError]) -> str:
    """The address to connect to for ``host``: resolved here, every address it gives
    passing ``admit`` (a name that resolves both out and in is refused)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise error(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        why = admit(address)
        if why is not None:
            raise error(f"refused {host}: {why}")
    if not addresses:
        raise error(f"{host} resolves to no address")
    return addresses[0]


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, pin: Pin | None) -> None:
        super().__init__()
        self._pin = pin

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, watch=_watch_of(req),
                                              pin=self._pin), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext | None, pin: Pin | None) -> None:
        super().__init__(context=context)
        self._tls = context
        self._pin = pin

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPSConnection, watch=_watch_of(req),
                                              pin=self._pin), req, context=self._tls)


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, schemes: tuple[str, ...]) -> None:
        super().__init__()
        self._schemes = schemes

    def redirect_request(  # noqa: PLR0917 - urllib's signature, overridden
            self, req: urllib.request.Request, fp: IO[bytes], code: int,
            msg: str, headers: Any, newurl: str) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if target.scheme not in HTTP_ONLY or target.scheme not in self._schemes:
            raise urllib.error.HTTPError(redacted(newurl), code,
                                         f"to {target.scheme}: only http(s)", headers, fp)
        if has_credentials(newurl):
            raise urllib.error.HTTPError(redacted(newurl), code,
                                         "to a URL with credentials in it", headers, fp)
        follow = super().redirect_request(req, fp, code, msg, headers, newurl)
        if follow is not None:
            follow.watch = _watch_of(req)  # type: ignore[attr-defined]  # the same exchange
        if follow is not None and origin(newurl) != origin(req.full_url):
            for name in [n for n in follow.headers if n.lower() not in _KEPT_ACROSS_ORIGINS]:
                follow.remove_header(name)
        return follow


# What the standard library raises for a failed exchange; a caller that retries looks for
# one of these as the cause of our error (a refusal of ours has none).
WIRE_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def _reason(  # noqa: PLR0911 - one return per kind of failure: the map, in one place
        exc: BaseException, session: Session, watch: Watch | None) -> str:
    """THE error map: one readable phrase for what went wrong on the wire."""
    if watch is not None and watch.expired:
        return f"not done within its {watch.seconds:g} s deadline"
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, TimeoutError):
        return f"no answer within {session.timeout:g} s"
    if isinstance(inner, ssl.SSLError):
        return f"TLS failed: {getattr(inner, 'reason', None) or inner}"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, http.client.HTTPException):
        return f"no valid HTTP answer ({type(inner).__name__})"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return redacted(str(inner)) or type(inner).__name__


class Headed:
    """What an answer's headers (names in lower case) say."""

    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class Response(Headed):
    """An answer being read: its status, its headers (names in lower case) and the body
    still to read, within the session's timeout and the exchange's deadline."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    _raw: Any = field(repr=False)
    _session: Session = field(repr=False)
    _watch: Watch = field(repr=False)

    def fail(self, why: str, error: type[ReconcilerError] | None = None) -> ReconcilerError:
        """The session's error (or ``error``) for this exchange, saying ``why``."""
        return (error or self._session.error)(f"{self.method} {redacted(self.url)}: {why}")

    def chunks(self, size: int = _CHUNK, *, whole: bool = True) -> Iterator[bytes]:
        """The body, a piece at a time as it arrives; a wire error, the deadline or (if
        ``whole``) a body cut short of its Content-Length raise the session's error."""
        read = getattr(self._raw, "read1", self._raw.read)
        while True:
            try:
                chunk = read(size)
            except WIRE_ERRORS as exc:
                raise self.fail(_reason(exc, self._session, self._watch)) from exc
            if self._watch.expired:
                raise self.fail(_reason(TimeoutError(), self._session, self._watch))
            if not chunk:
                left = _unread(self._raw)
                if whole and isinstance(left, int) and left > 0:
                    raise self.fail(f"the connection closed {left} bytes short of the body"
                                    ) from http.client.IncompleteRead(b"", left)
                return
            yield chunk

    def body(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (more is the session's error)."""
        parts: list[bytes] = []
        have = 0
        for chunk in self.chunks(min(_CHUNK, limit + 1)):
            have += len(chunk)
            if have > limit:
                raise self.fail(f"larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def first(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body; the rest is left unread."""
        parts: list[bytes] = []
        have = 0
        for chunk in self.chunks(min(_CHUNK, limit)):
            parts.append(chunk)
            have += len(chunk)
            if have >= limit:
                break
        return b"".join(parts)[:limit]

    def json(self, limit: int, *, max_depth: int = jsondoc.MAX_DEPTH) -> Any:
        """The body as JSON: at most ``limit`` bytes nested at most ``max_depth`` deep."""
        return decode_json(self.body(limit), f"{self.method} {self.url}",
                           self._session.error, max_depth=max_depth)


def _unread(raw: Any) -> int | None:
    """How many bytes of its Content-Length ``raw`` still owes (http.client keeps the
    count on the response; an error status wraps that response as ``fp``)."""
    for holder in (raw, getattr(raw, "fp", None)):
        if isinstance(holder, http.client.HTTPResponse):
            return holder.length
    return None


def decode_json(body: bytes, what: str, error: type[ReconcilerError] = HttpError, *,
                max_depth: int = jsondoc.MAX_DEPTH) -> Any:
    """``body`` as JSON, or ``error`` naming ``what`` (a URL is redacted)."""
    try:
        return jsondoc.loads(body, max_depth=max_depth)
    except JsonError as exc:
        raise error(f"{redacted(what)}: not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class Session:
    """How requests reach an origin. ``deadline`` bounds each whole exchange (None: only
    each connect and read is bounded, by ``timeout``). ``admit`` (None: any address, and
    the environment's proxies) judges every address a connection's host resolves to."""

    headers: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: Path | None = None
    timeout: float = 10.0
    deadline: float | None = None
    schemes: tuple[str, ...] = HTTP_ONLY
    error: type[ReconcilerError] = HttpError
    admit: Admit | None = None

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext | None:
        if self.ca_bundle is None:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot read the CA bundle {self.ca_bundle}: {exc}") from exc

    @functools.cached_property
    def _opener(self) -> urllib.request.OpenerDirector:
        pin = None if self.admit is None else functools.partial(
            _pinned, admit=self.admit, error=self.error)
        return urllib.request.build_opener(
            # the environment's proxies and no_proxy; none under an address policy
            urllib.request.ProxyHandler(None if pin is None else {}),
            _HTTPHandler(pin), _HTTPSHandler(self._tls, pin), _Redirects(self.schemes))

    def tls(self) -> None:
        """Read the CA bundle now, so a bad one is a ``ConfigError`` before any request."""
        _ = self._tls

    @contextlib.contextmanager
    def open(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
             body: bytes | None = None, deadline: float | None = None) -> Iterator[Response]:
        """The answer to one request, whatever its status (after at most
        ``MAX_REDIRECTS`` redirects); a redirect not followed, a refused URL or a wire
        error is the session's error. ``deadline`` (seconds) overrides the session's."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in self.schemes:
            raise self.error(f"{method} {redacted(url)}: unsupported URL scheme {scheme!r}: "
                             "expected " + " or ".join(self.schemes))
        if has_credentials(url):
            raise self.error(f"{method} {redacted(url)}: credentials in a URL are refused; "
                             "give them as a header or a basic_auth_file")
        watch = Watch(deadline if deadline is not None else self.deadline)
        try:
            with self._send(method, url, headers, body, watch) as raw:
                # A file: URL (kernel URLs from the host's own settings) has no status:
                # it was opened, which is what a 200 says.
                status = int(getattr(raw, "status", None) or getattr(raw, "code", None) or 200)
                found = raw.headers if raw.headers is not None else {}
                yield Response(method, url, status,
                               {name.lower(): value for name, value in found.items()},
                               raw, self, watch)
        finally:
            watch.cancel()

    @contextlib.contextmanager
    def _send(self, method: str, url: str, headers: Mapping[str, str] | None,
              body: bytes | None, watch: Watch) -> Iterator[Any]:
        request = _Request(
            url, data=body, method=method,
            headers={"User-Agent": USER_AGENT, **self.headers, **(headers or {})})
        request.watch = watch
        try:
            raw = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400 and exc.code != 304:
                exc.close()
                raise self.error(f"{method} {redacted(url)}: redirect not followed: "
                                 f"{exc.msg}") from exc
            raw = exc  # an error status is an answer like any other
        except WIRE_ERRORS as exc:
            raise self.error(f"{method} {redacted(url)}: "
                             f"{_reason(exc, self, watch)}") from exc
        with contextlib.closing(raw):
            yield raw


def head_status(url: str, timeout: float = 5.0) -> int:
    """The status a ``HEAD`` of ``url`` answers (http or https only)."""
    with Session(timeout=timeout, deadline=timeout * 2).open("HEAD", url) as answer:
        return answer.status


def get_status(url: str, timeout: float = 2.0) -> int:
    """The status a ``GET`` of ``url`` answers, its body read and dropped (at most 64 KiB):
    a readiness probe such as Falco's ``/healthz``."""
    with Session(timeout=timeout, deadline=timeout * 2).open("GET", url) as answer:
        answer.first(1 << 16)
        return answer.status


def download(url: str, target: Path, *, timeout: float | None = None,
             deadline: float | None = None, schemes: tuple[str, ...] = HTTP_ONLY) -> None:
    """Fetch ``url`` into ``target`` (a 2xx answer only); only the given schemes."""
    session = Session(timeout=timeout or 300, deadline=deadline, schemes=schemes)
    with session.open("GET", url) as answer:
        if not 200 <= answer.status < 300:
            raise answer.fail(f"answered {answer.status}")
        try:
            with target.open("wb") as handle:
                copy(answer, handle)
        except OSError as exc:
            raise answer.fail(f"cannot write {target}: {exc.strerror}") from exc


def copy(answer: Response, handle: BinaryIO, *, max_bytes: int | None = None,
         too_big: type[ReconcilerError] | None = None, whole: bool = True) -> None:
    """Stream the rest of ``answer`` into ``handle``; more than ``max_bytes`` in all (what
    ``handle`` already holds counted) raises ``too_big`` (or the session's error). A body
    cut short is an error only if ``whole`` (a caller that resumes counts for itself)."""
    for chunk in answer.chunks(whole=whole):
        if max_bytes is not None and handle.tell() + len(chunk) > max_bytes:
            raise answer.fail(f"more than the {max_bytes} bytes it may have", too_big)
        handle.write(chunk)


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10.0,
         ca_bundle: Path | None = None, limit: int = 1 << 20,
         ) -> tuple[int, dict[str, str], bytes]:
    """POST ``body``; the status, headers (names in lower case) and (at most ``limit``
    bytes of) body of the answer, error statuses included."""
    session = Session(ca_bundle=ca_bundle, timeout=timeout, deadline=timeout * 3)
    with session.open("POST", url, headers=headers, body=body) as answer:
        return answer.status, dict(answer.headers), answer.first(limit)


def post_json(url: str, body: bytes, timeout: float = 5.0) -> int:
    """POST ``body`` (JSON) to ``url``; the status it answered, if 2xx. Anything else (no
    connection, a timeout, a redirect or an error status) is an ``HttpError``."""
    status, _headers, _body = post(url, body, {"Content-Type": "application/json"},
                                   timeout=timeout, limit=1 << 16)
    if not 200 <= status < 300:
        raise HttpError(f"POST {redacted(url)} answered {status}")
    return status
