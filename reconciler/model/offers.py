"""What an upstream says it has: an ``Offer`` of one artifact, and a reconciler's index.

An offer is what the observe step found (a ``HEAD`` that answered 200, an entry of a
reconciler's ``index.json``) and the plan names (``+ fetch <path> from <upstream>``); the
executor tries a plan's offers in order. What an upstream states about the file (its
sha256, size and identity) is kept, so the fetch holds the bytes to it. Pure values and
the parser of the index a reconciler serves (``httpd.files``); no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import InvalidIndex
from reconciler.model.upstreams import Trust
from reconciler.model.versions import DriverIdentity

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LOAD_TEST_MAX = 16384  # bytes of one entry's loadTest kept (a result is about 600)


@dataclass(frozen=True)
class Offer:
    upstream: str  # the upstream's name (``Upstream.name``)
    url: str  # where the file is
    sha256: str | None = None  # the digest the upstream states (None: it states none)
    size: int | None = None  # the size it states or its HEAD answered
    identity: DriverIdentity | None = None  # the identity its index states
    trust: Trust = Trust.SIGNED  # its upstream's: checksum means no signature is needed
    # the index's ``loadTest`` (the result of the host that ran it), as compact JSON text
    load_test: str | None = None


@dataclass(frozen=True)
class IndexEntry:
    url_path: str  # encoded, from the upstream's root
    sha256: str
    size: int
    identity: DriverIdentity | None
    load_test: str | None = None


def load_test_outcome(text: str | None) -> str | None:
    """``passed``, ``failed``, ``loaded``, ``untested`` of an offer's ``loadTest``; None
    when the index has none."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return str(found.get("result")) if isinstance(found, Mapping) else None


def _load_test(entry: Mapping[str, Any]) -> str | None:
    found = entry.get("loadTest")
    if not isinstance(found, Mapping):
        return None
    text = json.dumps(found, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _LOAD_TEST_MAX else None




def parse_index(doc: Any) -> dict[str, IndexEntry]:
    """The entries of a reconciler's index by store path; entries that do not parse are
    skipped (an upstream newer than us may add kinds), a document that is not an index
    raises ``InvalidIndex``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("artifacts"), list):
        raise InvalidIndex("not a falco-reconciler index: no artifacts list")
    found: dict[str, IndexEntry] = {}
    for entry in doc["artifacts"]:
        if not isinstance(entry, Mapping):
            continue
        path, url, sha, size = (entry.get(k) for k in ("path", "url", "sha256", "size"))
        if not (isinstance(path, str) and isinstance(url, str) and url.startswith("/")
                and isinstance(sha, str) and _SHA256.match(sha)
                and isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            continue
        found[path] = IndexEntry(url, sha, size, _identity(entry), _load_test(entry))
    return found


def _identity(entry: Mapping[str, Any]) -> DriverIdentity | None:
    api, schema = entry.get("apiVersion"), entry.get("schemaVersion")
    if not (isinstance(api, str) and isinstance(schema, str)):
        return None
    try:
        return DriverIdentity.parse(api, schema)
    except ValueError:
        return None
