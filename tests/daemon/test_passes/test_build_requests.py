"""Build requests through the daemon's pass, in process: the real driver server and its
intake over real HTTP, the real pass (``passes.Runner``), planner and executor, a real
git repository and store; only the container engine is the in-memory fake, so this runs
where no Docker engine does (test_loop/test_build_requests.py runs both daemons for real)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli, runtime
from reconciler.apply.executor import OutcomeResult
from reconciler.daemon import passes, state
from reconciler.daemon.wakeup import Wakeup
from reconciler.edges.host import crypto
from reconciler.edges.http import requester
from reconciler.edges.state import buildqueue
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store import signedindex
from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.httpd.files import StoreFiles
from reconciler.httpd.intake import Intake
from reconciler.httpd.messages import Response
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.model import buildrequests as wire
from reconciler.model import hmacsig
from reconciler.model.upstreams import BuildPolicy, Upstream, UpstreamKind
from reconciler.plan import render
from reconciler.settings import Settings
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support import upstreams as ups
from tests.support.falcohost import host_yaml

SECRET = b"fleet-secret"
# Falco 0.32.2's loader on the default host root (Debian 11, 5.10.0-14-cloud-amd64).
GOOD = "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"


class CountingIntake(Intake):
    posts = 0

    def handle(self, client: str, body: bytes, signature: str | None) -> Response:
        self.posts += 1
        return super().handle(client, body, signature)


def _stamped(doc: dict[str, object]) -> dict[str, object]:
    """A request body as an asking host signs it: with its time and a fresh nonce."""
    return {**doc, "time": int(time.time()), "nonce": secrets.token_urlsafe(16)}


def _post(url: str, body: bytes, secret: bytes | None = SECRET) -> int:
    headers = {wire.SIGNATURE_HEADER: hmacsig.header_value(secret, body)} if secret else {}
    request = urllib.request.Request(url + wire.PATH, data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _reconciler(conf: Settings, engine: FakeEngine,
                queue: BuildQueue | None = None) -> passes.Runner:
    shared = runtime.Shared.for_settings(conf)
    return passes.Runner(conf, lambda: runtime.open_runtime(
        conf, shared=shared, connect=lambda _timeout: engine), queue=queue)


def _run(conf: Settings, reconciler: passes.Runner) -> passes.Report:
    return reconciler.run(passes.find_head(conf), last_good=None, refused=None, container=None)


def _good_key() -> wire.Requested:
    """GOOD as a build request's body names it."""
    key = wire.parse(json.dumps({"host": "x", "artifacts": [GOOD]}).encode())[1][0]
    assert isinstance(key, wire.Requested)
    return key


@contextlib.contextmanager
def _asking_host(tmp_path: Path, git_repo: GitRepo, make_host_root: Any, intake: Intake,
                 falco: str) -> Iterator[Settings]:
    """An edge host (web-1, ``build: never``, Falco ``falco``) whose one upstream is a
    build host serving ``intake``'s store and taking its build requests; it pins the build
    host's index key (``INDEX_KEY``)."""
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    git_repo.commit({"web.yaml": host_yaml("0.32.2", name=falco)})
    with DriverServer(intake.store, ("127.0.0.1", 0), intake=intake,
                      config=ServerConfig(workers=2, host_arch="x86_64")) as builder:
        yield Settings(
            repo=str(git_repo.path), host_root=make_host_root(hostname="web-1"),
            store=tmp_path / "store", state_dir=tmp_path / "state", privileged=False,
            build=BuildPolicy.NEVER, upstreams=(Upstream(
                builder.url, UpstreamKind.RECONCILER, build_requests=True,
                secret_file=secret),), trusted_keys=(_index_key(tmp_path).public,))


def _index_key(tmp_path: Path) -> crypto.SigningKey:
    path = tmp_path / "index.key"
    return crypto.load_signing_key(path) if path.exists() else crypto.new_signing_key(path)


@pytest.fixture
def build_host(tmp_path: Path, git_repo: GitRepo,
               make_host_root: Any) -> Iterator[tuple[Settings, DriverServer, Wakeup, BuildQueue]]:
    git_repo.commit({"README": "a build host: no Host of its own\n"})
    conf = Settings(repo=str(git_repo.path), host_root=make_host_root(hostname="builder-1"),
                    store=tmp_path / "store", state_dir=tmp_path / "state",
                    source=str(tmp_path / "no-such-source"), accept_build_requests=True)
    wakeup = Wakeup(debounce=0.05)
    queue = BuildQueue(conf.state_dir, 8)
    store = Store(conf.store)
    intake = Intake(SECRET, queue, store, host_arch="x86_64", limiter=RateLimiter(60),
                    wake=wakeup.wake)
    with DriverServer(store, ("127.0.0.1", 0), intake=intake,
                      config=ServerConfig(workers=2, host_arch="x86_64")) as server:
        yield conf, server, wakeup, queue


def test_a_signed_request_wakes_the_pass_which_builds_it_as_wanted_by_the_asker(
        build_host: tuple[Settings, DriverServer, Wakeup, BuildQueue]) -> None:
    conf, server, wakeup, queue = build_host
    body = json.dumps(_stamped({"host": "edge-7", "artifacts": [GOOD]})).encode()
    assert _post(server.url, body, None) == 401
    assert _post(server.url, body, b"guess") == 401
    assert wakeup.wait(0.3) == set()  # nothing unauthenticated wakes the daemon
    assert _post(server.url, body) == 202
    assert wakeup.wait(2) == {"build-request"}

    engine = FakeEngine()
    with runtime.open_runtime(conf, connect=lambda _t: engine) as rt:
        shown = render.as_text(rt.planner().plan().plan)
    assert f"+ build  {GOOD}" in shown
    assert "missing from the store: BuildRequest/edge-7" in shown

    report = _run(conf, _reconciler(conf, engine, queue))
    [build] = [o for o in report.outcomes if o.change.name == GOOD]
    assert build.change.op.value == "build" and "BuildRequest/edge-7" in build.change.detail
    assert build.result is OutcomeResult.FAILED  # no driver source here
    state = buildqueue.read(conf.state_dir)
    if build.transient:
        assert [e.path for e in state.pending] == [GOOD]  # tried again at the next pass
    else:
        assert state.pending == ()
        [finished] = state.finished
        assert (finished.path, finished.result, finished.hosts) == (GOOD, "failed", ("edge-7",))
        assert finished.why


def test_a_served_request_leaves_the_queue(
        build_host: tuple[Settings, DriverServer, Wakeup, BuildQueue], tmp_path: Path) -> None:
    conf, server, _wakeup, queue = build_host
    body = json.dumps(_stamped({"host": "edge-7", "artifacts": [GOOD]})).encode()
    assert _post(server.url, body) == 202
    key = _good_key()
    built = tmp_path / "built.ko"
    built.write_bytes(b"\x7fELF stand-in module")
    Store(conf.store).publish(key.key, built)  # as a build would
    report = _run(conf, _reconciler(conf, FakeEngine(), queue))
    assert not [o for o in report.outcomes if o.change.name == GOOD]
    state = buildqueue.read(conf.state_dir)
    assert state.pending == () and [(f.path, f.result) for f in state.finished] == [
        (GOOD, "built")]


def test_a_host_that_does_not_build_asks_once_and_its_pass_is_retried_soon(
        tmp_path: Path, git_repo: GitRepo, make_host_root: Any) -> None:
    builder_store = Store(tmp_path / "builder-store")
    intake = CountingIntake(SECRET, BuildQueue(tmp_path / "builder-state", 8), builder_store,
                            host_arch="x86_64", limiter=RateLimiter(60),
                            wake=lambda _reason: None)
    with _asking_host(tmp_path, git_repo, make_host_root, intake, "falco-asks") as conf:
        engine = FakeEngine()
        with runtime.open_runtime(conf, connect=lambda _t: engine) as rt:
            shown = render.as_text(rt.planner().plan().plan)
        assert f"+ request  {GOOD}" in shown
        reconciler = _reconciler(conf, engine)
        first = _run(conf, reconciler)
        [asked] = [o for o in first.outcomes if o.change.name == GOOD]
        assert asked.result is OutcomeResult.PENDING and "queued" in asked.message
        assert [o.result for o in first.outcomes if o.change.kind.value == "container"] == [
            OutcomeResult.SKIPPED]  # Falco waits for its driver
        assert first.transient  # the loop retries it soon (its backoff: 2 s doubling)
        assert [(e.path, e.hosts) for e in buildqueue.read(tmp_path / "builder-state").pending
                ] == [(GOOD, ("web-1",))]
        second = _run(conf, reconciler)
        [again] = [o for o in second.outcomes if o.change.name == GOOD]
        assert again.result is OutcomeResult.PENDING and "asked earlier" in again.message
        assert intake.posts == 1  # within the backoff: not asked again
        [record] = requester.read_sent(conf.state_dir)
        assert record.attempts == 1 and record.next_at > record.sent_at
        # The artifact arrives (the fetch side's job): no request any more, record gone.
        key = _good_key()
        built = tmp_path / "fetched.ko"
        built.write_bytes(b"\x7fELF stand-in module")
        Store(conf.store).publish(key.key, built)
        _run(conf, reconciler)
        assert requester.read_sent(conf.state_dir) == ()


def test_status_shows_requests_queued_on_a_build_host_and_awaited_on_the_asker(
        build_host: tuple[Settings, DriverServer, Wakeup, BuildQueue], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    conf, server, _wakeup, _queue = build_host
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    asker = tmp_path / "asker-state"
    key = _good_key()
    upstream = Upstream(server.url, UpstreamKind.RECONCILER, build_requests=True,
                        secret_file=secret)
    requester.request_builds([upstream], [key], asker, "edge-7")
    for state_dir in (conf.state_dir, asker):
        state.write(state_dir, state.Status(phase="idle"))

    assert cli.main(["status", "--state-dir", str(conf.state_dir)]) == 0
    here = capsys.readouterr().out
    assert "build requests queued here: 1" in here
    assert f"{GOOD} for edge-7 (127.0.0.1)" in here
    assert cli.main(["status", "--state-dir", str(asker)]) == 0
    there = capsys.readouterr().out
    assert "build requests sent: 1" in there and f"pending  {GOOD} at 127.0.0.1:" in there
    assert cli.main(["status", "--state-dir", str(asker), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["path"] for s in doc["buildRequests"]["sent"]] == [GOOD]
    assert doc["buildRequests"]["queued"] == []


def test_what_the_build_host_built_for_us_is_fetched_by_the_next_pass(
        tmp_path: Path, git_repo: GitRepo, make_host_root: Any) -> None:
    builder_store = Store(tmp_path / "builder-store")
    intake = Intake(SECRET, BuildQueue(tmp_path / "builder-state", 8), builder_store,
                    host_arch="x86_64", limiter=RateLimiter(60), wake=lambda _reason: None)
    with _asking_host(tmp_path, git_repo, make_host_root, intake, "falco-fetches") as conf:
        engine = FakeEngine()
        reconciler = _reconciler(conf, engine)
        [asked] = [o for o in _run(conf, reconciler).outcomes if o.change.name == GOOD]
        assert asked.change.op.value == "request"
        # The build host builds it (here: publishes a module that verifies as that build's).
        key = _good_key()
        built = tmp_path / "built.ko"
        built.write_bytes(ups.driver_bytes(key.key))
        builder_store.publish(key.key, built)
        signer = _index_key(tmp_path)  # and vouches for it, as its pass does
        signedindex.resign(builder_store.root, key_id=signer.key_id, sign=signer.sign,
                           signer="builder-1", entries=StoreFiles(builder_store).index(),
                           expiry=3600, now=dt.datetime.now(dt.UTC))
        second = _run(conf, reconciler)
        name = conf.upstreams[0].name
    [fetched] = [o for o in second.outcomes if o.change.name == GOOD]
    assert (fetched.change.op.value, fetched.result) == ("fetch", OutcomeResult.OK)
    assert fetched.message.startswith(f"fetched from {name}, verified: "
                                      "sha256 as stated, kernel module")
    assert Store(conf.store).lookup(key.key) is not None
    assert requester.read_sent(conf.state_dir) == ()  # nothing is asked any more
