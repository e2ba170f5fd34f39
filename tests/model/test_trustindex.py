"""``model.trustindex`` and ``edges.store.signedindex``: what a signed index vouches for.
Real Ed25519 keys; the store is a real folder.

- a document signed by a pinned key covers exactly its (path, sha256) pairs; the newest
  trusted version of each key wins, a lower one than seen is a rollback;
- canonical bytes do not depend on key order, so a mirror that reorders JSON changes nothing;
- re-signing bumps the version only when the listing changed or half the validity passed,
  and never lists what came in by checksum alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reconciler.edges.host import crypto
from reconciler.edges.store import signedindex
from reconciler.model import trustindex

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
SHA_A, SHA_B = "a" * 64, "b" * 64
PATH = "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"


def _doc(key: crypto.SigningKey, version: int, sha: str, hours: float = 1) -> dict[str, object]:
    return trustindex.make(signer="b", version=version, expires=NOW + dt.timedelta(hours=hours),
                           artifacts={PATH: {"sha256": sha}}, key_id=key.key_id, sign=key.sign)


def test_the_newest_trusted_version_covers_and_older_ones_are_rollbacks(tmp_path: Path) -> None:
    key = crypto.new_signing_key(tmp_path / "k")
    trusted = {key.key_id: key.public}
    judged = trustindex.judge([_doc(key, 1, SHA_A), _doc(key, 2, SHA_B)], trusted,
                              crypto.verify, NOW, {})
    assert judged.vouches(PATH, SHA_B) is not None
    assert judged.vouches(PATH, SHA_A) is None  # superseded by version 2
    assert judged.listed(PATH) == (SHA_B,)
    assert trustindex.versions(judged, {}) == {key.key_id: 2}
    later = trustindex.judge([_doc(key, 1, SHA_A)], trusted, crypto.verify, NOW,
                             {key.key_id: 2})
    assert later.covered == ()
    assert "a rollback" in later.refused[0]


def test_canonical_bytes_ignore_key_order() -> None:
    assert trustindex.canonical({"b": 1, "a": {"y": 2, "x": "é"}}) == \
        trustindex.canonical({"a": {"x": "é", "y": 2}, "b": 1}) == \
        b'{"a":{"x":"\\u00e9","y":2},"b":1}'


def test_resigning_bumps_the_version_only_when_needed_and_skips_checksum_arrivals(
    tmp_path: Path,
) -> None:
    key = crypto.new_signing_key(tmp_path / "k")
    entries: list[dict[str, object]] = [{"path": PATH, "sha256": SHA_A, "size": 3}]

    def sign(now: dt.datetime) -> bool:
        return signedindex.resign(tmp_path, key_id=key.key_id, sign=key.sign, signer="b",
                                  entries=entries, expiry=7200, now=now)

    assert sign(NOW)
    assert not sign(NOW + dt.timedelta(minutes=30))  # same listing, most validity left
    assert sign(NOW + dt.timedelta(minutes=61))  # past half its validity
    doc, = signedindex.held(tmp_path)
    assert doc["signed"]["version"] == 2
    assert doc["signed"]["artifacts"][PATH]["kernel"] == "5.10.0-14-cloud-amd64"
    signedindex.mark(tmp_path, PATH, SHA_A, "mirror")  # it came in by checksum only
    assert sign(NOW + dt.timedelta(minutes=62))
    doc, = signedindex.held(tmp_path)
    assert (doc["signed"]["version"], doc["signed"]["artifacts"]) == (3, {})
