"""HTTP as a client: the one place urllib meets the network (a HEAD probe, a download,
an alert POSTed).

Errors become ``OSError`` subclasses with one readable sentence (``HttpError``), so
callers translate them into their own errors once.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class HttpError(OSError):
    """A request failed: no connection, a timeout, or an HTTP error status."""


def head_status(url: str, timeout: float = 5.0) -> int:
    """The status a ``HEAD`` of ``url`` answers (http or https only)."""
    _check_scheme(url, ("http", "https"))
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"HEAD {url} failed: {reason}") from exc


def get_status(url: str, timeout: float = 2.0) -> int:
    """The status a ``GET`` of ``url`` answers, its body read and dropped (at most 64 KiB):
    a readiness probe such as Falco's ``/healthz``."""
    _check_scheme(url, ("http", "https"))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - checked
            answer.read(1 << 16)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"GET {url} failed: {reason}") from exc


def download(url: str, target: Path, *, timeout: float | None = None,
             schemes: tuple[str, ...] = ("http", "https")) -> None:
    """Fetch ``url`` into ``target``; only the given schemes."""
    _check_scheme(url, schemes)
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout or 300) as response,  # noqa: S310
            target.open("wb") as handle,
        ):
            shutil.copyfileobj(response, handle, 1 << 20)
    except urllib.error.URLError as exc:
        raise HttpError(str(exc.reason)) from exc


def post_json(url: str, body: bytes, timeout: float = 5.0) -> int:
    """POST ``body`` (JSON) to ``url``; the status it answered, if 2xx. Anything else (no
    connection, a timeout, a redirect or an error status) is an ``HttpError``."""
    _check_scheme(url, ("http", "https"))
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "falco-reconciler"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            answer.read(1 << 16)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        raise HttpError(f"POST {url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"POST {url} failed: {reason}") from exc
    if not 200 <= status < 300:
        raise HttpError(f"POST {url} answered {status}")
    return status


def _check_scheme(url: str, schemes: tuple[str, ...]) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in schemes:
        raise HttpError(f"unsupported URL scheme {scheme!r} in {url}: expected "
                        + " or ".join(schemes))
