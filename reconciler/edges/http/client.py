"""HTTP as a client: the one place urllib meets the network (a HEAD probe, a download,
an alert POSTed, a build request).

Errors become ``OSError`` subclasses with one readable sentence (``HttpError``), so
callers translate them into their own errors once.
"""

from __future__ import annotations

import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class HttpError(OSError):
    """A request failed: no connection, a timeout, or an HTTP error status."""


def head_status(url: str, timeout: float = 5.0) -> int:
    """The status a ``HEAD`` of ``url`` answers (http or https only)."""
    return _status("HEAD", url, timeout)


def get_status(url: str, timeout: float = 2.0) -> int:
    """The status a ``GET`` of ``url`` answers, its body read and dropped (at most 64 KiB):
    a readiness probe such as Falco's ``/healthz``."""
    return _status("GET", url, timeout)


def _status(method: str, url: str, timeout: float) -> int:
    _check_scheme(url, ("http", "https"))
    request = urllib.request.Request(url, method=method)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - checked
            answer.read(1 << 16)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"{method} {url} failed: {reason}") from exc


def download(url: str, target: Path, *, timeout: float | None = None,
             schemes: tuple[str, ...] = ("http", "https")) -> None:
    """Fetch ``url`` into ``target``; only the given schemes."""
    _check_scheme(url, schemes)
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout or 300) as response,  # noqa: S310 - checked
            target.open("wb") as handle,
        ):
            shutil.copyfileobj(response, handle, 1 << 20)
    except urllib.error.URLError as exc:
        raise HttpError(str(exc.reason)) from exc


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 10.0,
         ca_bundle: Path | None = None, limit: int = 1 << 20) -> tuple[int, dict[str, str], bytes]:
    """POST ``body``; the status, headers and (at most ``limit`` bytes of) body of the
    answer, error statuses included."""
    _check_scheme(url, ("http", "https"))
    request = urllib.request.Request(url, data=body, headers=headers,  # noqa: S310 - checked
                                     method="POST")
    context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else None
    try:
        with urllib.request.urlopen(request, timeout=timeout,  # noqa: S310 - checked
                                    context=context) as answer:
            return int(answer.status), dict(answer.headers.items()), answer.read(limit)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), dict(exc.headers.items()), exc.read(limit)
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"POST {url} failed: {reason}") from exc


def post_json(url: str, body: bytes, timeout: float = 5.0) -> int:
    """POST ``body`` (JSON) to ``url``; the status it answered, if 2xx. Anything else (no
    connection, a timeout, a redirect or an error status) is an ``HttpError``."""
    status, _headers, _body = post(
        url, body, {"Content-Type": "application/json", "User-Agent": "falco-reconciler"},
        timeout=timeout, limit=1 << 16)
    if not 200 <= status < 300:
        raise HttpError(f"POST {url} answered {status}")
    return status


def _check_scheme(url: str, schemes: tuple[str, ...]) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in schemes:
        raise HttpError(f"unsupported URL scheme {scheme!r} in {url}: expected "
                        + " or ".join(schemes))
