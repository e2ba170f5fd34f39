"""URLs as plans, logs, status and alerts may show them: never with credentials.

``http://user:pass@host`` is refused where a URL is configured (upstreams, alerts) and by
the HTTP client; ``redacted`` is what any message shows of a URL (or of a text holding
URLs), in case one got through anyway.
"""

from __future__ import annotations

import re
import urllib.parse

# scheme://userinfo@ : the userinfo is everything up to the last "@" before the path.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]*@)")


def has_credentials(url: str) -> bool:
    """Whether ``url`` names a user or a password before its host."""
    return "@" in urllib.parse.urlsplit(url).netloc


def redacted(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def origin(url: str) -> tuple[str, str]:
    """The scheme and host[:port] of ``url``, which a redirect must keep for our headers
    to follow it."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


def where(url: str) -> str:
    """The host[:port] of ``url``, without its user or password: how a log names a target
    whose path may hold a secret (a Slack webhook's does)."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


def file_name(url: str) -> str:
    """The last segment of ``url``'s path ("" if none)."""
    return urllib.parse.urlsplit(url).path.rpartition("/")[2]
