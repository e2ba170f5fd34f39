"""Build requests end to end: ``reconciler run`` as a real child process on each side,
real HTTP between them, a real engine.

Both need the real engine (the ``engine`` fixture skips them without one, but under CI);
test_passes/test_build_requests.py runs the same passes in process on the fake engine. The build
host's build cannot succeed here (its base image does not exist, as in
test_end_to_end.py), so what is checked is that a signed request wakes it, that the pass
plans and tries the requested build as wanted by ``BuildRequest/<host>``, and that the
queue is settled with why. The asking host (``build: never``) asks once, then waits out
its backoff while its daemon re-checks soon.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.http import requester
from reconciler.edges.state import buildqueue
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.httpd.intake import Intake
from reconciler.httpd.messages import Response
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.model import buildrequests as wire
from reconciler.model import hmacsig
from tests.conftest import GitRepo, _git
from tests.daemon.conftest import ROOT, Daemon
from tests.support.falcohost import host_yaml

pytestmark = pytest.mark.docker

SECRET = b"fleet-secret"
GOOD = "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"



def _stamped(doc: dict[str, object]) -> dict[str, object]:
    """A request body as an asking host signs it: with its time and a fresh nonce."""
    return {**doc, "time": int(time.time()), "nonce": secrets.token_urlsafe(16)}


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bare(tmp: Path, files: dict[str, str]) -> Path:
    bare = tmp / "manifests.git"
    bare.mkdir()
    _git(bare, "init", "-q", "--bare", "-b", "main")
    work = GitRepo(tmp / "work")
    work.git("remote", "add", "origin", str(bare))
    work.commit(files or {"README": "no manifests\n"})
    work.git("push", "-q", "origin", "HEAD:main")
    return bare


def _post(url: str, body: bytes, secret: bytes | None = SECRET) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[wire.SIGNATURE_HEADER] = hmacsig.header_value(secret, body)
    request = urllib.request.Request(url + wire.PATH, data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _status(state_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", "status", "--state-dir",
                           str(state_dir), *extra], capture_output=True, text=True, cwd=ROOT,
                          check=False, timeout=60)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop(timeout=30)


def test_a_signed_request_wakes_the_build_host_whose_pass_builds_it_for_the_asker(
        tmp_path: Path, make_host_root: Any, daemons: list[Daemon], engine: Any) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    port = _port()
    state = tmp_path / "state"
    daemon = Daemon([
        "--repo", str(_bare(tmp_path, {})), "--host-root",
        str(make_host_root(hostname="builder-1")), "--store", str(tmp_path / "store"),
        "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", "--privileged", "false",
        "--poll-interval", "300", "--no-docker-events",
        "--base-image", "falco-reconciler/no-such-base-image:0",
        "--accept-build-requests", "true", "--build-request-secret-file", str(secret),
    ], state, tmp_path / "daemon.log")
    daemons.append(daemon.start())
    url = f"http://127.0.0.1:{port}"
    first = daemon.wait_for(lambda s: s.get("passes", 0) >= 1 and s.get("phase") == "idle",
                            why="the first pass")
    body = json.dumps(_stamped({"host": "edge-7", "artifacts": [GOOD]})).encode()

    # Unsigned, then signed with another secret: nothing queued, no pass.
    assert _post(url, body, None)[0] == 401
    assert _post(url, body, b"guess")[0] == 401
    assert buildqueue.read(state).pending == ()

    status, answer = _post(url, body)
    assert status == 202, answer
    assert json.loads(answer)["artifacts"] == [{"path": GOOD, "verdict": "queued"}]
    done = daemon.wait_for(
        lambda s: s.get("passes", 0) > first["passes"] and s.get("phase") == "idle"
        and "build-request" in (s.get("lastPass") or {}).get("trigger", []),
        why="a pass woken by the build request")
    assert done["passes"] == first["passes"] + 1  # the unsigned requests woke nothing
    [build] = [o for o in done["lastPass"]["outcomes"] if o["name"] == GOOD]
    assert build["op"] == "build" and "BuildRequest/edge-7" in build["reason"]
    assert build["result"] == "failed"  # no base image here
    # Failed for good: off the queue, with why; a transient failure would stay queued.
    queue = buildqueue.read(state)
    if build["message"] and not done["lastPass"]["transient"]:
        assert queue.pending == ()
        [finished] = queue.finished
        assert finished.path == GOOD and finished.result == "failed" and finished.why
        assert finished.hosts == ("edge-7",)
    else:
        assert [e.path for e in queue.pending] == [GOOD]
    text = _status(state)
    assert text.returncode == 0 and GOOD in text.stdout and "edge-7" in text.stdout, text.stdout
    as_json = json.loads(_status(state, "--json").stdout)
    assert "queued" in as_json["buildRequests"]
    assert daemon.stop() == 0


class CountingIntake(Intake):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.posts = 0

    def handle(self, client: str, body: bytes, signature: str | None) -> Response:
        self.posts += 1
        return super().handle(client, body, signature)


def test_a_host_that_does_not_build_asks_once_and_rechecks_soon(
        tmp_path: Path, make_host_root: Any, daemons: list[Daemon], engine: Any) -> None:
    builder_state = tmp_path / "builder-state"
    builder_store = Store(tmp_path / "builder-store")
    intake = CountingIntake(SECRET, BuildQueue(builder_state, 8), builder_store,
                            host_arch="x86_64", limiter=RateLimiter(60),
                            wake=lambda _reason: None)
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    with DriverServer(builder_store, ("127.0.0.1", 0), intake=intake,
                      config=ServerConfig(workers=2, host_arch="x86_64")) as builder:
        config = tmp_path / "config.yaml"
        config.write_text(
            "build: never\nupstreams:\n"
            f"  - {{url: '{builder.url}', kind: reconciler, build_requests: true, "
            f"secret_file: '{secret}'}}\n")
        state = tmp_path / "state"
        daemon = Daemon([
            "--config", str(config),
            "--repo", str(_bare(tmp_path, {"web.yaml": host_yaml(
                "0.32.2", name=f"falco-asks-{tmp_path.name[-8:]}")})),
            "--host-root", str(make_host_root(hostname="web-1")),
            "--store", str(tmp_path / "store"), "--state-dir", str(state),
            "--listen", f"127.0.0.1:{_port()}", "--privileged", "false",
            "--poll-interval", "300", "--no-docker-events",
        ], state, tmp_path / "daemon.log")
        daemons.append(daemon.start())
        first = daemon.wait_for(lambda s: s.get("passes", 0) >= 1 and s.get("phase") == "idle",
                                why="the first pass")
        [asked] = [o for o in first["lastPass"]["outcomes"] if o["op"] == "request"]
        assert asked["name"] == GOOD and asked["result"] == "pending"
        assert "queued" in asked["message"]
        skipped = [o for o in first["lastPass"]["outcomes"] if o["kind"] == "container"]
        assert skipped and all(o["result"] == "skipped" for o in skipped)
        assert first["nextRetryAt"]  # a pending request: the daemon re-checks soon
        # The build host has it, from this host.
        [entry] = buildqueue.read(builder_state).pending
        assert entry.path == GOOD and entry.hosts == ("web-1",)
        # The retry passes come, and do not ask again within the backoff.
        later = daemon.wait_for(lambda s: s.get("passes", 0) >= first["passes"] + 2
                                and s.get("phase") == "idle", timeout=30,
                                why="two retry passes")
        assert "retry" in later["lastPass"]["trigger"]
        assert intake.posts == 1
        [record] = requester.read_sent(state)
        assert record.attempts == 1 and record.upstream
        text = _status(state)
        assert "build requests sent: 1" in text.stdout and GOOD in text.stdout, text.stdout
        assert daemon.stop() == 0
