"""The signed-index path end to end: three ``reconciler run`` processes, real HTTP.

- **build-1** signs its index (``--index-signing-key``, an Ed25519 key made by openssl):
  its store holds a module and a probe (stand-ins for what it built: real ELF objects
  that pass every check a fetch is held to), and each pass vouches for what it serves;
- **mirror-1** (``build: never``, build-1 as its upstream, build-1's key pinned) fetches
  both, publishes them because build-1's signature covers them, and serves build-1's
  signed document on in its own ``/index.json``; then someone with the mirror's disk
  changes one byte of the probe and writes a matching ``.sha256``;
- **edge-1** (``build: never``, only the mirror as upstream, build-1's key pinned) gets the
  module (the mirror carried build-1's signature for it) and refuses the probe: the mirror's
  checksum matches, the ELF checks pass, but no trusted signature covers those bytes. The
  status of its pass names both.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.store.local import SHA_SUFFIX
from reconciler.edges.store.verifier import sha256_file
from reconciler.model.artifacts import ArtifactKey, DriverKind
from tests.daemon.conftest import Daemon, Site
from tests.support import upstreams as ups

pytestmark = pytest.mark.docker
RELEASE = "5.10.0-14-cloud-amd64"
KMOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
EBPF = ArtifactKey("2.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.EBPF)
BUILD = f"""\
apiVersion: falco-reconciler/v1
kind: DriverBuild
metadata: {{name: fleet}}
spec:
  target: debian
  driverVersion: 2.0.0+driver
  kernelRelease: {RELEASE}
  kernelVersion: "1"
  outputs: [kmod, ebpf]
"""


def index(site: Site) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{site.port}/index.json", timeout=10) as got:
        doc: dict[str, Any] = json.load(got)
    return doc


def outcomes(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {o["name"]: (o["result"], o["message"]) for o in status["lastPass"]["outcomes"]}


def fetching(site: Site, upstream: Site, public: str, name: str) -> Daemon:
    config = site.tmp / "config.yaml"
    config.write_text(json.dumps({
        "upstreams": [{"url": f"http://127.0.0.1:{upstream.port}", "kind": "reconciler"}],
        "trusted_keys": [public], "build": "never"}))
    return site.daemon("--hostname", name, "--config", str(config), "--no-docker-events")


def test_a_signed_index_travels_through_a_mirror_and_only_what_it_covers_is_published(
    tmp_path: Path, docker_client: Any,
) -> None:
    sites = []
    for name in ("build", "mirror", "edge"):
        (tmp_path / name).mkdir()
        sites.append(Site(tmp_path / name, docker_client, "no Falco runs here"))
    build, mirror, edge = sites
    try:
        revision = build.push({"fleet.yaml": BUILD})
        for site in (mirror, edge):
            site.bare = build.bare  # one repository for the fleet
        for key in (KMOD, EBPF):
            (tmp_path / "built").write_bytes(ups.driver_bytes(key))
            build.store.publish(key, tmp_path / "built")
        index_key = tmp_path / "index.key"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(index_key)],
                       check=True, capture_output=True)
        builder = build.daemon("--hostname", "build-1", "--index-signing-key", str(index_key),
                               "--no-docker-events")
        builder.applied(revision)
        signed = index(build)["signedIndexes"]
        assert len(signed) == 1
        assert signed[0]["signed"]["signer"] == "build-1"
        assert set(signed[0]["signed"]["artifacts"]) == {KMOD.relpath, EBPF.relpath}
        public = _public(index_key)

        fetching(mirror, build, public, "mirror-1").applied(revision)
        assert index(mirror)["signedIndexes"] == signed  # passed on as received
        assert {e["path"]: e["trust"] for e in index(mirror)["artifacts"]} == {
            KMOD.relpath: "signed", EBPF.relpath: "signed"}

        # The mirror's disk is changed: one byte of the probe, and a .sha256 to match.
        probe = mirror.store.path_of(EBPF)
        original = sha256_file(probe)
        data = bytearray(probe.read_bytes())
        data[len(data) // 2] ^= 0x01
        probe.write_bytes(bytes(data))
        probe.with_name(probe.name + SHA_SUFFIX).write_text(
            f"{sha256_file(probe)}  {probe.name}\n")

        status = fetching(edge, mirror, public, "edge-1").wait_for(
            lambda s: (s.get("lastPass") or {}).get("result") == "failed",
            why="the edge's first pass")
        done = outcomes(status)
        assert done[KMOD.relpath][0] == "ok"
        assert "signed by 'build-1' (index version 1" in done[KMOD.relpath][1]
        assert done[EBPF.relpath][0] == "failed"
        assert (f"is not covered by a trusted signature: trusted signed indexes list it with "
                f"sha256 {original}") in done[EBPF.relpath][1]
        assert edge.store.lookup(KMOD) is not None
        assert edge.store.lookup(EBPF) is None
        assert sha256_file(edge.store.path_of(KMOD)) == sha256_file(build.store.path_of(KMOD))
    finally:
        for site in sites:
            site.cleanup()


def _public(key: Path) -> str:
    """The pinned form of an Ed25519 key, from openssl alone: the last 32 bytes of its
    DER public key, base64."""
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return "ed25519:" + base64.b64encode(der[-32:]).decode()
