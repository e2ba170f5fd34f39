"""Fetched bytes are published only under a trusted signature, over real HTTP: a build
host's store signs its index (Ed25519, ``edges.store.signedindex``); a real nginx (Debian's
nginx-light, basic auth) mirrors a copy of that store with its ``index.json`` as a static
file; the edge host's real fetcher pins the build host's key.

- the mirror serves a module with one byte changed and a ``.sha256`` that matches it (and
  the ELF checks still pass): NOT published, and the refusal names the digest the signed
  index lists; the same mirror set to ``trust: checksum`` publishes it, and says so in the
  outcome, the store's records and ``/index.json`` (what checksum trust is worth);
- the untampered mirror: published, "signed by", the document kept to pass on, ``/index.json``
  of the edge carries it and marks the artifact ``signed``;
- a document signed by an unpinned key, one altered after signing, one past its expiry,
  and one older than a version already seen (rollback) cover nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler import plan
from reconciler.apply import fetcher
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges.host import crypto
from reconciler.edges.store import signedindex
from reconciler.edges.store.local import SHA_SUFFIX, Store
from reconciler.edges.store.verifier import sha256_file
from reconciler.errors import ArtifactRejected
from reconciler.httpd.files import StoreFiles
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.offers import Offer
from reconciler.model.upstreams import Trust, Upstream, UpstreamKind
from reconciler.observe.state import ObservedState
from tests.support import upstreams as ups

KMOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                   DriverKind.KMOD)
NOW = dt.datetime.now(dt.UTC)
WANT = DesiredState(revision="r" * 40, hostname="web-1", host="web", container=None,
                    artifacts=(DesiredArtifact(KMOD, ("Host/web",)),))


@dataclass
class BuildHost:
    store: Store
    key: crypto.SigningKey

    def sign(self, *, now: dt.datetime = NOW, expiry: float = 3600) -> None:
        assert signedindex.resign(self.store.root, key_id=self.key.key_id, sign=self.key.sign,
                                  signer="build-1", entries=StoreFiles(self.store).index(),
                                  expiry=expiry, now=now)

    def index_json(self) -> bytes:
        return StoreFiles(self.store).index_json()


@pytest.fixture
def build_host(tmp_path: Path) -> BuildHost:
    store = Store(tmp_path / "build-store")
    (tmp_path / "falco.ko").write_bytes(ups.driver_bytes(KMOD))
    store.publish(KMOD, tmp_path / "falco.ko")
    made = BuildHost(store, crypto.new_signing_key(tmp_path / "index.key"))
    made.sign()
    return made


def copy_store(build: BuildHost, folder: Path, *, tamper: bool = False) -> Path:
    """What a mirror holds: the store's files and its index.json; with ``tamper`` the
    module has one byte changed (in its padding: still the same ELF) and a .sha256 that
    matches the changed bytes."""
    shutil.copytree(build.store.root, folder, ignore=shutil.ignore_patterns(".*"))
    (folder / "index.json").write_bytes(build.index_json())
    if tamper:
        module = folder / KMOD.relpath
        data = bytearray(module.read_bytes())
        data[len(data) // 2] ^= 0x01
        module.write_bytes(bytes(data))
        (folder / (KMOD.relpath + SHA_SUFFIX)).write_text(
            f"{sha256_file(module)}  {module.name}\n")
    return folder


@pytest.fixture
def nginx_mirror(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    users = tmp_path / "htpasswd"
    users.write_text(ups.htpasswd_line("mirror", "pw"))
    auth = tmp_path / "auth"
    auth.write_text("mirror:pw\n")
    root = tmp_path / "mirror"
    yield root, auth


def fetch(store: Store, upstream: Upstream, trusted: tuple[str, ...]) -> str:
    offers = ((KMOD, (Offer(upstream.name, upstream.url + KMOD.url_path()),)),)
    change, = plan.diff(WANT, ObservedState(offers=offers)).changes
    return fetcher.Fetcher(store, (upstream,), trusted_keys=trusted).fetch(change, WANT)


def test_a_tampered_module_with_a_matching_sha256_from_an_nginx_mirror_is_not_published(
    build_host: BuildHost, nginx_mirror: tuple[Path, Path], tmp_path: Path,
) -> None:
    root, auth = nginx_mirror
    copy_store(build_host, root, tamper=True)
    original = sha256_file(build_host.store.path_of(KMOD))
    edge = Store(tmp_path / "edge-store")
    with ups.nginx(root, tmp_path / "nginx", tmp_path / "htpasswd") as url:
        mirror = Upstream(url, UpstreamKind.RECONCILER, basic_auth_file=auth)
        with pytest.raises(ArtifactRejected) as caught:
            fetch(edge, mirror, (build_host.key.public,))
        assert f"trusted signed indexes list it with sha256 {original}" in str(caught.value)
        assert edge.lookup(KMOD) is None

        # What checksum trust is worth: the same mirror, trusted by its checksum, passes.
        by_checksum = Upstream(url, UpstreamKind.RECONCILER, basic_auth_file=auth,
                               trust=Trust.CHECKSUM)
        said = fetch(edge, by_checksum, (build_host.key.public,))
    assert said.endswith("trusted by checksum only (trust: checksum): no signed index "
                         "covers it")
    assert sha256_file(edge.path_of(KMOD)) != original
    entry, = json.loads(StoreFiles(edge).index_json())["artifacts"]
    assert (entry["trust"], entry["trustedFrom"]) == ("checksum", mirror.name)


def test_the_untampered_mirror_is_published_and_its_document_passed_on(
    build_host: BuildHost, nginx_mirror: tuple[Path, Path], tmp_path: Path,
) -> None:
    root, auth = nginx_mirror
    copy_store(build_host, root)
    edge = Store(tmp_path / "edge-store")
    with ups.nginx(root, tmp_path / "nginx", tmp_path / "htpasswd") as url:
        mirror = Upstream(url, UpstreamKind.RECONCILER, basic_auth_file=auth)
        said = fetch(edge, mirror, (build_host.key.public,))
    assert f"signed by 'build-1' (index version 1, key {build_host.key.key_id[:12]})" in said
    served = json.loads(StoreFiles(edge).index_json())
    assert [e["trust"] for e in served["artifacts"]] == ["signed"]
    assert served["signedIndexes"] == json.loads(build_host.index_json())["signedIndexes"]
    assert signedindex.seen(edge.root) == {build_host.key.key_id: 1}


def _files(build: BuildHost, index: bytes) -> dict[str, bytes]:
    data = build.store.path_of(KMOD).read_bytes()
    return {"/index.json": index, KMOD.url_path(): data}


def _refused(build: BuildHost, index: bytes, tmp_path: Path, trusted: tuple[str, ...],
             seen: dict[str, int] | None = None) -> str:
    edge = Store(tmp_path / "edge")
    if seen:
        signedindex.remember(edge.root, seen)
    with ups.file_server(ups.Behaviour(files=_files(build, index))) as (url, _how), \
            pytest.raises(ArtifactRejected) as caught:
        fetch(edge, Upstream(url, UpstreamKind.RECONCILER), trusted)
    assert edge.lookup(KMOD) is None
    return str(caught.value)


def test_an_unpinned_key_an_altered_an_expired_or_a_rolled_back_index_covers_nothing(
    build_host: BuildHost, tmp_path: Path,
) -> None:
    good = build_host.index_json()
    other = crypto.new_signing_key(tmp_path / "other.key")
    assert "signed by no trusted key (trusted_keys)" in _refused(
        build_host, good, tmp_path / "a", (other.public,))

    altered = json.loads(good)
    entry = altered["signedIndexes"][0]["signed"]["artifacts"][KMOD.relpath]
    entry["size"] += 1  # anything changed after signing
    assert "does not verify with the trusted key it names: altered in transit" in _refused(
        build_host, json.dumps(altered).encode(), tmp_path / "b", (build_host.key.public,))

    (build_host.store.root / signedindex.FOLDER / f"{build_host.key.key_id}.json").unlink()
    build_host.sign(now=NOW - dt.timedelta(hours=2), expiry=3600)  # expired an hour ago
    assert "(version 1) expired at" in _refused(
        build_host, build_host.index_json(), tmp_path / "c", (build_host.key.public,))

    assert "version 1, older than version 5 already seen: a rollback" in _refused(
        build_host, good, tmp_path / "d", (build_host.key.public,),
        seen={build_host.key.key_id: 5})
