"""The push that once read a build host's files, replayed against ``reconciler run`` (a
real child process, real git, real HTTP for the webhook and the alerts).

The daemon has a webhook secret and a module-signing keyring (a real openssl key and
certificate). A push naming the webhook secret's path as ``signing.key`` is refused at its
file and line; a push naming the keyring's key by name is planned, its build fails (this
engine has no such base image) and an alert goes out. Neither the webhook secret nor any
line of the private key appears in ``status.json``, the daemon's log, the build logs or
any alert body."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import headers, images, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.modsig import Signing
from tests.builder.helpers import CACHE_ROOT
from tests.daemon.conftest import Site
from tests.daemon.test_alerts import Receiver
from tests.support import kernelpkg
from tests.support.keys import (
    files_holding,
    hostile_headers,
    key_lines,
    make_signing_pair,
    signed_by,
)

pytestmark = pytest.mark.docker
SECRET = "webhook-s3cr3t-4f1c9a0b"
DRIVER = "8.0.0+driver"
SOURCE = "deb:falcosecurity-scap-dkms/trixie"  # its driver sources are 8.0.0+driver's
BUILD = """\
apiVersion: falco-reconciler/v1
kind: DriverBuild
metadata: {{name: signed}}
spec:
  target: debian
  driverVersion: 8.0.0+driver
  kernelRelease: {release}
  kernelVersion: "1"
  signing:
    key: {key}
"""
OLD_KERNEL = "5.10.0-14-cloud-amd64"  # no headers here: its build fails, as wanted


def _build_host_settings(tmp_path: Path, receiver: Receiver) -> tuple[Path, Signing, Path]:
    """A webhook secret, a keyring holding ``mok`` (a real openssl key and certificate) and
    alerts to ``receiver``: the secret file, the pair and the config file."""
    secret = tmp_path / "webhook.secret"
    secret.write_text(SECRET + "\n")
    pair = make_signing_pair(tmp_path / "keys", "mok")
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "signing_keys": {"mok": {"key": pair.key, "certificate": pair.certificate}},
        "alerts": [receiver.url()], "webhook_secret_file": str(secret)}))
    return secret, pair, config


def test_a_push_cannot_name_a_host_file_and_no_secret_reaches_status_logs_or_alerts(
    tmp_path: Path, docker_client: Any,
) -> None:
    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", docker_client, "no Falco runs here")
    receiver = Receiver()
    secret, pair, config = _build_host_settings(tmp_path, receiver)
    try:
        first = site.push({"README": "a build host\n"})
        daemon = site.daemon("--hostname", "build-1", "--config", str(config),
                             "--webhook-listen", "127.0.0.1:0", "--no-docker-events",
                             "--poll-interval", "1")
        daemon.applied(first)
        hostile = site.push({"build.yaml": BUILD.format(release=OLD_KERNEL, key=secret)},
                            "read a host file")
        refused = daemon.wait_for(
            lambda s: (s.get("rejected") or {}).get("revision") == hostile, timeout=60,
            why="the push naming a host path refused")
        assert "build.yaml:10: spec.signing.key: must be the name of a signing key in the " \
               "build host's keyring" in refused["rejected"]["reason"]

        named = site.push({"build.yaml": BUILD.format(release=OLD_KERNEL, key="mok")},
                          "sign with mok")
        failed = daemon.wait_for(
            lambda s: s.get("lastPass", {}).get("revision") == named
            and s["lastPass"]["result"] == "failed", timeout=120, why="the build tried")
        assert any(o["op"] == "build" and o["result"] == "failed"
                   for o in failed["lastPass"]["outcomes"]), failed["lastPass"]
        deadline = time.monotonic() + 30
        while not any(b.get("event") == "build-failed" for b in receiver.bodies):
            assert time.monotonic() < deadline, f"no build-failed alert: {receiver.bodies}"
            time.sleep(0.05)
    finally:
        site.cleanup()
        receiver.stop()
    leaks = [SECRET, *key_lines(pair)]
    assert files_holding(leaks, site.state_dir, site.tmp / "daemon.log") == []
    assert not any(line in json.dumps(receiver.bodies) for line in leaks)


@pytest.mark.slow
def test_a_real_build_whose_headers_carry_a_hostile_sign_file_signs_in_process(
    tmp_path: Path, docker_client: Any, base_image: str,
) -> None:
    """The daemon really builds a DriverBuild signed with the keyring's ``mok``, against
    headers whose ``scripts/sign-file`` would print every key and secret it can find (the
    headers a pusher's kernelUrls could supply; here placed in the daemon's own header
    cache): the module is published signed by ``mok`` and openssl verifies it, the hostile
    script never ran, and neither the key nor the webhook secret is in status.json, the
    daemon's log, the build logs or the alert bodies."""
    release = kernelpkg.require(1)[0].release
    shared = CACHE_ROOT / "cache"
    eng = jobs.Jobs(Docker(docker_client))
    log = steps.BuildLog(tmp_path / "prepare.log")
    image = images.ensure(eng, base_image, shared / "locks", log, timeout=1800)
    headers.ensure(eng, image.reference, KernelId("debian", release, "1", "x86_64"),
                   kernel_urls=(), cache_root=shared / "headers", log=log, timeout=900)
    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", docker_client, "no Falco runs here")
    assert hostile_headers(shared, site.state_dir / "cache", release) >= 1
    receiver = Receiver()
    _secret, pair, config = _build_host_settings(tmp_path, receiver)
    key = ArtifactKey(DRIVER, "x86_64", "debian", release, "1", DriverKind.KMOD)
    try:
        revision = site.push({"build.yaml": BUILD.format(release=release, key="mok")})
        daemon = site.daemon("--hostname", "build-1", "--config", str(config),
                             "--webhook-listen", "127.0.0.1:0", "--no-docker-events",
                             "--source", SOURCE, "--base-image", base_image)
        done = daemon.applied(revision, timeout=900)
        built = [o for o in done["lastPass"]["outcomes"] if o["name"] == key.relpath]
        assert [(o["op"], o["result"]) for o in built] == [("build", "ok")], done["lastPass"]
    finally:
        site.cleanup()
        receiver.stop()
    signed_by(site.store.path_of(key).read_bytes(), pair, tmp_path)
    build_logs = list((site.state_dir / "logs").glob("*.log"))
    assert build_logs
    assert not any("HOSTILE-SIGN-FILE-RAN" in p.read_text(errors="replace") for p in build_logs)
    leaks = [SECRET, *key_lines(pair)]
    assert files_holding(leaks, site.state_dir / "logs", site.state_dir / "status.json",
                         site.tmp / "daemon.log", site.store.root) == []
    assert not any(line in json.dumps(receiver.bodies) for line in leaks)
