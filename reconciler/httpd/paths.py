"""Request target -> what to serve: a pure function, no filesystem, no sockets.

Falco's loaders ask for ``/<driverVersion>/<arch>/<file>`` (Falco < 0.32: no ``<arch>/``),
with the ``+`` of the driver version spelled ``%2B`` (bash loader, falcoctl's
``url.QueryEscape``) or raw (a hand-typed ``curl``). Nothing else is served, so the rules
are strict rather than clever:

* the target is percent-decoded exactly once, as UTF-8, strictly: malformed escapes, overlong
  or invalid UTF-8 (``%c0%ae``), NUL and other control characters give 400;
* after that single decoding, a ``%`` (double encoding), a backslash, an empty segment, a
  segment that is ``.``/``..`` or starts with ``.`` (temp files of a publish, hidden folders)
  give 404;
* what is left must have the store's shape: an artifact name that ``artifacts.parse_relpath``
  accepts, or its ``.sha256`` sidecar, under a known arch folder. Anything else is 404, so
  there are no listings and no stray files.

The result names candidate paths relative to the store; the opener (``files``) still refuses
symlinks and non-regular files, because a name can be checked here but a file only there.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.model import artifacts
from reconciler.model.artifacts import SHA_SUFFIX

# The arch folders of the store, in the order tried when a path has none (Falco < 0.32).
STORE_ARCHES = tuple(artifacts.store_arch(a) for a in artifacts.SUPPORTED_ARCHES)

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_RAW_FORBIDDEN = re.compile(r"[^\x21-\x7e]")  # controls, space, DEL, non-ASCII
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TARGET = 4096


class RouteKind(enum.Enum):
    FILE = "file"
    INDEX = "index"
    HEALTH = "health"
    BUILD_REQUESTS = "build_requests"  # POST only, and only on a build host that takes them
    BAD_REQUEST = "bad_request"  # 400: the target itself is malformed
    NOT_FOUND = "not_found"  # 404: well-formed, but nothing we serve lives there


@dataclass(frozen=True)
class Route:
    """Where a request target leads.

    For ``RouteKind.FILE``, ``candidates`` are store-relative paths (literal ``+``) to try in
    order; the first that opens is served. ``sidecar`` says it is a ``.sha256`` file.
    ``reason`` explains a refusal (for the debug log, never sent to the client).
    """

    kind: RouteKind
    candidates: tuple[str, ...] = ()
    sidecar: bool = False
    reason: str = ""


INDEX = Route(RouteKind.INDEX)
HEALTH = Route(RouteKind.HEALTH)
BUILD_REQUESTS = Route(RouteKind.BUILD_REQUESTS)


def _bad(reason: str) -> Route:
    return Route(RouteKind.BAD_REQUEST, reason=reason)


def _missing(reason: str) -> Route:
    return Route(RouteKind.NOT_FOUND, reason=reason)


def decode_path(raw: str) -> str | Route:  # noqa: PLR0911 - one refusal per rule
    """The path part of a request target, percent-decoded once; or a refusal."""
    if len(raw) > _MAX_TARGET:
        return _bad("target too long")
    if _RAW_FORBIDDEN.search(raw):
        return _bad("raw control, space or non-ASCII character in target")
    if raw.startswith(("http://", "https://")):
        # absolute-form (RFC 9112 3.2.2): only its path matters to us.
        raw = urlsplit(raw).path or "/"
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return _bad("target is not an absolute path")
    if "%" in _ESCAPE.sub("", path):
        return _bad("malformed percent escape")
    try:
        decoded = _ESCAPE.sub(lambda m: chr(int(m[1], 16)), path).encode("latin-1")
        text = decoded.decode("utf-8", errors="strict")
    except UnicodeError:
        return _bad("escapes are not valid UTF-8 (overlong or truncated)")
    if _CONTROL.search(text):
        return _bad("control character (NUL...) after decoding")
    return text


def resolve(  # noqa: PLR0911 - one route per shape of path
    raw_target: str, host_arch: str = STORE_ARCHES[0]
) -> Route:
    """Route a raw request target (as on the request line) to what the server does.

    ``host_arch`` (store spelling, ``x86_64``) is tried first for arch-less paths of
    Falco < 0.32; the other supported arches follow.
    """
    decoded = decode_path(raw_target)
    if isinstance(decoded, Route):
        return decoded
    if "%" in decoded:
        return _missing("percent sign after decoding: double encoding")
    if "\\" in decoded:
        return _missing("backslash in path")
    segments = decoded[1:].split("/")
    for segment in segments:
        if not segment:
            return _missing("empty segment or trailing slash")
        if segment.startswith("."):  # a publish's temp files start with "." too
            return _missing("dot segment, hidden or temp file")
    if segments == ["index.json"]:
        return INDEX
    if segments == ["healthz"]:
        return HEALTH
    if segments == ["v1", "build-requests"]:
        return BUILD_REQUESTS
    if len(segments) == 3:
        version, arch, name = segments
        return _file_route(version, (arch,), name)
    if len(segments) == 2:
        version, name = segments
        arches = (host_arch, *(a for a in STORE_ARCHES if a != host_arch))
        return _file_route(version, arches, name)
    return _missing("not a store path")


def _file_route(version: str, arches: tuple[str, ...], name: str) -> Route:
    sidecar = name.endswith(SHA_SUFFIX)
    artifact_name = name[: -len(SHA_SUFFIX)] if sidecar else name
    candidates = tuple(
        f"{version}/{arch}/{name}"
        for arch in arches
        if artifacts.parse_relpath(f"{version}/{arch}/{artifact_name}") is not None
    )
    if not candidates:
        return _missing("not an artifact name or its checksum")
    return Route(RouteKind.FILE, candidates=candidates, sidecar=sidecar)
