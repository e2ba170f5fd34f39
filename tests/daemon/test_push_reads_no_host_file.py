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

from tests.daemon.conftest import Site
from tests.daemon.test_alerts import Receiver
from tests.support.keys import files_holding, key_lines, make_signing_pair

pytestmark = pytest.mark.docker
SECRET = "webhook-s3cr3t-4f1c9a0b"
BUILD = """\
apiVersion: falco-reconciler/v1
kind: DriverBuild
metadata: {{name: signed}}
spec:
  target: debian
  driverVersion: 2.0.0+driver
  kernelRelease: 5.10.0-14-cloud-amd64
  signing:
    key: {key}
"""


def test_a_push_cannot_name_a_host_file_and_no_secret_reaches_status_logs_or_alerts(
    tmp_path: Path, docker_client: Any,
) -> None:
    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", docker_client, "no Falco runs here")
    receiver = Receiver()
    secret = tmp_path / "webhook.secret"
    secret.write_text(SECRET + "\n")
    pair = make_signing_pair(tmp_path / "keys", "mok")
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "signing_keys": {"mok": {"key": pair.key, "certificate": pair.certificate}},
        "alerts": [receiver.url()], "webhook_secret_file": str(secret)}))
    try:
        first = site.push({"README": "a build host\n"})
        daemon = site.daemon("--hostname", "build-1", "--config", str(config),
                             "--webhook-listen", "127.0.0.1:0", "--no-docker-events",
                             "--poll-interval", "1")
        daemon.applied(first)
        hostile = site.push({"build.yaml": BUILD.format(key=secret)}, "read a host file")
        refused = daemon.wait_for(
            lambda s: (s.get("rejected") or {}).get("revision") == hostile, timeout=60,
            why="the push naming a host path refused")
        assert "build.yaml:9: spec.signing.key: must be the name of a signing key in the " \
               "build host's keyring" in refused["rejected"]["reason"]

        named = site.push({"build.yaml": BUILD.format(key="mok")}, "sign with mok")
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
