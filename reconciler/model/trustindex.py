"""Signed indexes: what a build host vouches for, and what an edge host may publish. Pure.

Ideas taken from The Update Framework (TUF), in a small format of our own: a *targets*
list (each artifact's store path, sha256, size, kernel, identity and module signer) with a
*version* that only grows (an older document is a rollback, refused once a newer one was
seen) and an *expiry* (a document past it is a freeze, refused), signed with Ed25519 by a
key the edge pins (``trusted_keys``) rather than learns. Mirrors, CDNs and buckets are
untrusted carriers: they pass signed documents on unchanged, and the bytes they serve are
published only when a trusted, unexpired document covers their path and sha256.

A document::

    {"signed": {"_type": "falco-reconciler/signed-index", "signer": "build-1",
                "version": 7, "expires": "2026-12-14T22:00:00Z",
                "artifacts": {"<store path>": {"sha256": ..., "size": ..., "kernel": ...,
                              "apiVersion": ..., "schemaVersion": ..., "moduleSigner": ...}}},
     "signatures": [{"keyid": "<sha256 of the pinned key text>", "sig": "<base64>"}]}

The signature is over ``canonical(signed)``: JSON with sorted keys, no spaces, ASCII only.
A reconciler serves the documents it holds as ``signedIndexes`` in its ``/index.json``
(``edges.store.signedindex``), so a static copy of that file is a mirror too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import InvalidSignedIndex
from reconciler.model import timestamps
from reconciler.model.artifacts import parse_relpath

TYPE = "falco-reconciler/signed-index"
FIELD = "signedIndexes"  # where /index.json carries the documents
MAX_DOCUMENTS = 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Verify = Callable[[str, str, bytes], bool]  # (public key, signature, data) -> genuine


@dataclass(frozen=True)
class Covered:
    """One trusted document: who signed it, its version and what it vouches for."""

    key_id: str
    signer: str
    version: int
    expires: dt.datetime
    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)  # as received, to pass on

    def digest_of(self, relpath: str) -> str | None:
        entry = self.artifacts.get(relpath)
        return entry.get("sha256") if entry else None


def targets(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a signed index lists, from ``/index.json`` entries: per store path its sha256,
    size, kernel release, identity and module signer."""
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        path = entry.get("path")
        key = parse_relpath(path) if isinstance(path, str) else None
        if key is None:
            continue
        found[key.relpath] = {
            "sha256": entry.get("sha256"), "size": entry.get("size"),
            "kernel": key.kernel_release, "apiVersion": entry.get("apiVersion"),
            "schemaVersion": entry.get("schemaVersion"), "moduleSigner": entry.get("signer")}
    return found


def canonical(signed: Mapping[str, Any]) -> bytes:
    return json.dumps(signed, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode("ascii")


def make(*, signer: str, version: int, expires: dt.datetime,
         artifacts: Mapping[str, Mapping[str, Any]], key_id: str,
         sign: Callable[[bytes], str]) -> dict[str, Any]:
    """A signed document over ``artifacts`` (store path -> what is vouched for)."""
    signed = {"_type": TYPE, "signer": signer, "version": version,
              "expires": timestamps.iso_utc(expires),
              "artifacts": {path: dict(entry) for path, entry in sorted(artifacts.items())}}
    return {"signed": signed, "signatures": [{"keyid": key_id, "sig": sign(canonical(signed))}]}


def check(doc: Any, trusted: Mapping[str, str], verify: Verify, now: dt.datetime) -> Covered:
    """The document if a key of ``trusted`` (key id -> public key) signed it and it has not
    expired; ``InvalidSignedIndex`` otherwise."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("signed"), Mapping) \
            or not isinstance(doc.get("signatures"), list):
        raise InvalidSignedIndex("not a signed index: expected {signed, signatures}")
    signed = doc["signed"]
    key_id = _trusted_signature(signed, doc["signatures"], trusted, verify)
    version, expires = signed.get("version"), parse_time(signed.get("expires"))
    artifacts = signed.get("artifacts")
    if signed.get("_type") != TYPE or not isinstance(version, int) or isinstance(version, bool) \
            or version < 1 or expires is None or not isinstance(artifacts, Mapping):
        raise InvalidSignedIndex("a signed document that is not a signed index")
    if expires <= now:
        raise InvalidSignedIndex(f"the signed index of {signed.get('signer')!r} (version "
                                 f"{version}) expired at {signed.get('expires')}: refused, as "
                                 "a mirror that froze would serve it")
    entries = {str(path): entry for path, entry in artifacts.items()
               if isinstance(entry, Mapping) and isinstance(entry.get("sha256"), str)
               and _SHA256.match(entry["sha256"])}
    return Covered(key_id, str(signed.get("signer", "")), version, expires, entries, doc)


def _trusted_signature(signed: Mapping[str, Any], signatures: list[Any],
                       trusted: Mapping[str, str], verify: Verify) -> str:
    data = canonical(signed)
    named = False
    for entry in signatures[:MAX_DOCUMENTS]:
        if not isinstance(entry, Mapping):
            continue
        key_id, sig = entry.get("keyid"), entry.get("sig")
        public = trusted.get(key_id) if isinstance(key_id, str) else None
        if public is None or not isinstance(sig, str):
            continue
        named = True
        if verify(public, sig, data):
            return str(key_id)
    if named:
        raise InvalidSignedIndex(f"the signature of {signed.get('signer')!r}'s index does not "
                                 "verify with the trusted key it names: altered in transit")
    raise InvalidSignedIndex(f"the index of {signed.get('signer')!r} is signed by no trusted "
                             "key (trusted_keys)")


def parse_time(text: Any) -> dt.datetime | None:
    """An ISO time with its zone (``...Z``), or None."""
    if not isinstance(text, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class Judgement:
    """What the documents seen say: the trusted ones, and why each other was refused."""

    covered: tuple[Covered, ...] = ()
    refused: tuple[str, ...] = ()

    def vouches(self, relpath: str, sha256: str) -> Covered | None:
        """The newest trusted document listing ``relpath`` with ``sha256``."""
        fits = [c for c in self.covered if c.digest_of(relpath) == sha256]
        return max(fits, key=lambda c: c.version) if fits else None

    def listed(self, relpath: str) -> tuple[str, ...]:
        """The digests trusted documents list for ``relpath`` (to say what was wanted)."""
        return tuple(sorted({d for c in self.covered if (d := c.digest_of(relpath))}))


def judge(docs: Iterable[Any], trusted: Mapping[str, str], verify: Verify, now: dt.datetime,
          seen: Mapping[str, int]) -> Judgement:
    """Every document checked; ``seen`` is the highest version trusted so far per key id:
    a lower one is a rollback and refused, an equal one must be the same document (kept)."""
    covered: dict[str, Covered] = {}
    refused: list[str] = []
    for doc in list(docs)[:MAX_DOCUMENTS * 4]:
        try:
            found = check(doc, trusted, verify, now)
        except InvalidSignedIndex as exc:
            refused.append(str(exc))
            continue
        floor = seen.get(found.key_id, 0)
        if found.version < floor:
            refused.append(f"the signed index of {found.signer!r} is version {found.version}, "
                           f"older than version {floor} already seen: a rollback, refused")
            continue
        best = covered.get(found.key_id)
        if best is None or found.version > best.version:
            covered[found.key_id] = found
    return Judgement(tuple(covered.values()), tuple(refused))


def versions(judgement: Judgement, seen: Mapping[str, int]) -> dict[str, int]:
    """``seen`` raised to the versions just trusted (what to remember against rollback)."""
    merged = dict(seen)
    for found in judgement.covered:
        merged[found.key_id] = max(merged.get(found.key_id, 0), found.version)
    return merged


def documents(index_doc: Any) -> list[Any]:
    """The signed documents an ``/index.json`` carries (none if it carries none)."""
    if not isinstance(index_doc, Mapping):
        return []
    found = index_doc.get(FIELD)
    return list(found[:MAX_DOCUMENTS]) if isinstance(found, list) else []
