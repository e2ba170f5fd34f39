"""Downloads under a ``model.netpolicy.UrlPolicy``: URLs the repository named.

Only the policy lives here; the wire is ``client.Session``'s, given the policy's
``refusal`` as its ``admit``: each hop (every redirect, at most ``client.MAX_REDIRECTS``)
resolves the name, refuses unless every address it gives passes, and connects to exactly
the address it checked, never through a proxy. The body is capped at the policy's
``max_bytes`` (a ``Content-Length`` over it is refused before reading) and the whole
download at ``timeout`` seconds. Errors are ``HttpError`` with one sentence.
"""

from __future__ import annotations

from typing import BinaryIO

from reconciler.edges.http.client import Session
from reconciler.errors import HttpError
from reconciler.model.netpolicy import SCHEMES, UrlPolicy
from reconciler.model.urls import has_credentials, origin, redacted


def download(url: str, handle: BinaryIO, *, policy: UrlPolicy, timeout: float) -> int:
    """Write the body of ``url`` into ``handle``; the number of bytes written."""
    scheme, where = origin(url)
    if scheme not in SCHEMES or not where.partition(":")[0]:
        raise HttpError(f"refused {redacted(url)}: only http:// and https:// URLs with a host")
    if has_credentials(url):
        raise HttpError("credentials in a URL are refused")
    session = Session(timeout=timeout, deadline=timeout, schemes=SCHEMES,
                      admit=policy.refusal)
    limit = policy.max_bytes
    with session.open("GET", url) as answer:
        if answer.status != 200:
            raise answer.fail(f"answered {answer.status}")
        if answer.length is not None and answer.length > limit:
            raise answer.fail(f"{answer.length} bytes is over the limit of {limit}")
        written = 0
        for chunk in answer.chunks():
            written += len(chunk)
            if written > limit:
                raise answer.fail(f"more than the limit of {limit} bytes")
            handle.write(chunk)
    return written
