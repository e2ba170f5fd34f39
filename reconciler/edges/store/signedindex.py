"""Signed indexes kept beside the store, under ``<store>/.trust/`` (a hidden folder: never
scanned as artifacts, never served as a file).

- ``<key id>.json``: one signed document per signing key: this build host's own
  (``resign``), and each upstream document a fetch was published under (``keep``), so a
  mirror passes on exactly what its own edges need. ``served`` gives them to
  ``/index.json`` (``httpd.files``) as ``signedIndexes``.
- ``seen.json``: the highest version trusted per key id, against rollback.
- ``checksum.json``: artifacts that came in by an upstream's checksum alone
  (``trust: checksum``), with their sha256; ``annotate`` says so in ``/index.json``.

Every write is atomic (``edges.atomic``); every read is bounded, and a file that does not
parse counts as absent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.edges import atomic, capped
from reconciler.errors import InvalidSignedIndex
from reconciler.model import trustindex

FOLDER = ".trust"
MAX_DOCUMENT = 32 << 20  # about 100,000 artifacts
_KEY_FILE = re.compile(r"^[0-9a-f]{64}\.json$")


def _read(path: Path) -> Any:
    try:
        return json.loads(capped.read(path, MAX_DOCUMENT, "the document", InvalidSignedIndex))
    except (ValueError, RecursionError):  # InvalidSignedIndex is one: absent, too big
        return None


def _write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8"))


def held(root: Path) -> list[Any]:
    """The signed documents kept in the store, in key-id order."""
    folder = root / FOLDER
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if _KEY_FILE.match(p.name))
    return [doc for name in names[:trustindex.MAX_DOCUMENTS]
            if (doc := _read(folder / name)) is not None]


def served(root: Path) -> dict[str, Any]:
    """What ``/index.json`` carries besides its artifacts."""
    return {trustindex.FIELD: held(root)}


def keep(root: Path, found: trustindex.Covered) -> None:
    """Keep a trusted upstream document to pass on, unless one as new is kept already."""
    path = root / FOLDER / f"{found.key_id}.json"
    old = _read(path)
    version = old.get("signed", {}).get("version") if isinstance(old, Mapping) else None
    if isinstance(version, int) and version >= found.version:
        return
    _write(path, found.document)


def seen(root: Path) -> dict[str, int]:
    doc = _read(root / FOLDER / "seen.json")
    if not isinstance(doc, Mapping):
        return {}
    return {str(k): v for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)}


def remember(root: Path, versions: Mapping[str, int]) -> None:
    if versions != seen(root):
        _write(root / FOLDER / "seen.json", dict(versions))


def by_checksum(root: Path) -> dict[str, dict[str, str]]:
    """Store path -> {sha256, upstream} of what came in by checksum alone."""
    doc = _read(root / FOLDER / "checksum.json")
    return {str(k): v for k, v in doc.items() if isinstance(v, dict)} \
        if isinstance(doc, Mapping) else {}


def mark(root: Path, relpath: str, sha256: str, upstream: str | None) -> None:
    """Record how ``relpath`` came in: by checksum from ``upstream``, or (None) not."""
    marks = by_checksum(root)
    if upstream is None:
        if marks.pop(relpath, None) is None:
            return
    else:
        marks[relpath] = {"sha256": sha256, "upstream": upstream}
    _write(root / FOLDER / "checksum.json", marks)


def annotate(entries: list[dict[str, object]], root: Path) -> list[dict[str, object]]:
    """``/index.json`` entries with ``trust``: ``checksum`` (and ``trustedFrom``) for what
    came in by an upstream's checksum alone, else ``signed`` when a kept document covers
    it, else ``built`` (this host built it, or it predates signed indexes)."""
    marks = by_checksum(root)
    vouched = {(path, entry.get("sha256")) for doc in held(root)
               if isinstance(doc, Mapping) and isinstance(doc.get("signed"), Mapping)
               for path, entry in (doc["signed"].get("artifacts") or {}).items()
               if isinstance(entry, Mapping)}
    out = []
    for entry in entries:
        mark_ = marks.get(str(entry.get("path")))
        if mark_ is not None and mark_.get("sha256") == entry.get("sha256"):
            out.append({**entry, "trust": "checksum", "trustedFrom": mark_.get("upstream")})
        elif (entry.get("path"), entry.get("sha256")) in vouched:
            out.append({**entry, "trust": "signed"})
        else:
            out.append({**entry, "trust": "built"})
    return out


def resign(root: Path, *, key_id: str, sign: Callable[[bytes], str], signer: str,
           entries: list[dict[str, object]], expiry: float, now: dt.datetime) -> bool:
    """Sign this host's index again when what it lists changed or half its validity has
    passed; True if a new version was written. Only what this host built or holds under a
    trusted signature is listed: never what came in by checksum alone."""
    artifacts = trustindex.targets([e for e in annotate(entries, root)
                                    if e.get("trust") != "checksum"])
    path = root / FOLDER / f"{key_id}.json"
    old = _read(path)
    signed = old.get("signed") if isinstance(old, Mapping) else None
    version = signed.get("version", 0) if isinstance(signed, Mapping) else 0
    if isinstance(signed, Mapping) and signed.get("artifacts") == artifacts:
        expires = trustindex.parse_time(signed.get("expires"))
        if expires is not None and (expires - now).total_seconds() > expiry / 2:
            return False
    doc = trustindex.make(signer=signer, version=int(version) + 1,
                          expires=now + dt.timedelta(seconds=expiry), artifacts=artifacts,
                          key_id=key_id, sign=sign)
    _write(path, doc)
    return True
