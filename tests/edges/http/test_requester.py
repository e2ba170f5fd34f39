"""The asking side of build requests, against a real build host's server over real HTTP:
it POSTs each artifact once, then waits out its backoff; refusals and silence are told
apart, and a record goes once the artifact is no longer needed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.edges.http import requester
from reconciler.edges.state import buildqueue
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.httpd.intake import Intake
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.model import artifacts, asking
from reconciler.model.asking import Standing
from reconciler.model.buildrequests import Requested
from reconciler.model.upstreams import Upstream, UpstreamKind
from reconciler.testing import FakeClock

SECRET = b"fleet-secret"
GOOD = "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"
FOREIGN = "2.0.0+driver/aarch64/falco_debian_5.10.0-14-cloud-arm64_1.ko"


def _wanted(relpath: str, release: str = "") -> Requested:
    key = artifacts.parse_relpath(relpath)
    assert key is not None
    return Requested(key, release)


@dataclass
class Builder:
    url: str
    state_dir: Path
    woken: list[str] = field(default_factory=list)

    def upstream(self, secret_file: Path) -> Upstream:
        return Upstream(self.url, UpstreamKind.RECONCILER, build_requests=True,
                        secret_file=secret_file)


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[Builder]:
    store = Store(tmp_path / "builder-store")
    woken: list[str] = []
    intake = Intake(SECRET, BuildQueue(tmp_path / "builder-state", 64), store,
                    host_arch="x86_64", limiter=RateLimiter(600), wake=woken.append)
    config = ServerConfig(workers=2, host_arch="x86_64")
    with DriverServer(store, ("127.0.0.1", 0), config=config, intake=intake) as server:
        yield Builder(server.url, tmp_path / "builder-state", woken)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "build-request.secret"
    path.write_bytes(SECRET + b"\n")
    return path


def test_asks_once_then_waits_out_the_backoff(builder: Builder, secret_file: Path,
                                              tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "state"
    ups = [Upstream("http://127.0.0.1:9/plain"), builder.upstream(secret_file)]
    first = requester.request_builds(ups, [_wanted(GOOD)], state, "web-1", now=clock.time)
    [standing] = first.keys
    assert standing.standing is Standing.PENDING and standing.posted
    assert standing.upstream == builder.upstream(secret_file).name
    assert standing.next_at == clock.time() + asking.FIRST_WAIT
    queued = buildqueue.read(builder.state_dir).pending
    assert [(e.path, e.hosts) for e in queued] == [(GOOD, ("web-1",))]
    assert builder.woken == ["build-request"]

    # Passes within the backoff do not POST again.
    clock.advance(10)
    again = requester.request_builds(ups, [_wanted(GOOD)], state, "web-1", now=clock.time)
    assert not again.keys[0].posted and again.keys[0].standing is Standing.PENDING
    assert builder.woken == ["build-request"]
    [record] = requester.read_sent(state)
    assert record.attempts == 1

    # After it, once more, and the next wait is twice as long.
    clock.advance(asking.FIRST_WAIT)
    third = requester.request_builds(ups, [_wanted(GOOD)], state, "web-1", now=clock.time)
    assert third.keys[0].posted
    assert third.keys[0].standing is Standing.PENDING
    assert third.keys[0].detail == "already queued"
    assert third.keys[0].next_at == clock.time() + 2 * asking.FIRST_WAIT
    assert asking.wait_after(10) == asking.LONGEST_WAIT

    # Fetched (or no longer wanted): the record goes.
    requester.keep_only(state, [])
    assert requester.read_sent(state) == ()


def test_a_refusal_is_reported_per_artifact_with_the_build_hosts_reason(
        builder: Builder, secret_file: Path, tmp_path: Path) -> None:
    outcome = requester.request_builds(
        [builder.upstream(secret_file)], [_wanted(GOOD), _wanted(FOREIGN)], tmp_path / "s",
        "web-1")
    good, foreign = outcome.keys
    assert good.standing is Standing.PENDING
    assert foreign.standing is Standing.REJECTED and not foreign.transient
    assert "architecture aarch64" in foreign.detail


def test_a_wrong_secret_makes_nothing_and_says_so(builder: Builder, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-secret")
    outcome = requester.request_builds([builder.upstream(wrong)], [_wanted(GOOD)],
                                           tmp_path / "s", "web-1")
    assert outcome.keys[0].standing is Standing.UNREACHABLE
    assert "401" in outcome.keys[0].detail and outcome.keys[0].transient
    assert buildqueue.read(builder.state_dir).pending == () and builder.woken == []


def test_no_build_host_and_a_silent_one_are_told_apart(secret_file: Path,
                                                      tmp_path: Path) -> None:
    none = requester.request_builds([Upstream("http://127.0.0.1:9")], [_wanted(GOOD)],
                                        tmp_path / "s", "web-1")
    assert none.keys[0].standing is Standing.NO_BUILD_HOST and not none.keys[0].transient
    # A port nothing listens on.
    gone = Upstream("http://127.0.0.1:9", build_requests=True, secret_file=secret_file,
                    timeout=2)
    silent = requester.request_builds([gone], [_wanted(GOOD)], tmp_path / "s", "web-1")
    assert silent.keys[0].standing is Standing.UNREACHABLE and silent.keys[0].transient


def test_a_busy_build_hosts_retry_after_is_honoured(secret_file: Path, tmp_path: Path) -> None:
    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Retry-After", "240")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"full\n")

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        busy = Upstream(f"http://127.0.0.1:{httpd.server_address[1]}", build_requests=True,
                        secret_file=secret_file)
        clock = FakeClock()
        outcome = requester.request_builds([busy], [_wanted(GOOD)], tmp_path / "s",
                                               "web-1", now=clock.time)
        assert outcome.keys[0].standing is Standing.UNREACHABLE
        assert "503" in outcome.keys[0].detail
        assert outcome.keys[0].next_at == clock.time() + 240
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_real_release_travels_with_a_key_named_otherwise(
        builder: Builder, secret_file: Path, tmp_path: Path) -> None:
    named = "8.0.0+driver/x86_64/falco_debian_6.1.76-1-cloud-amd64_1.ko"
    requester.request_builds([builder.upstream(secret_file)],
                                 [_wanted(named, "6.1.0-18-cloud-amd64")], tmp_path / "s",
                                 "web-1")
    [entry] = buildqueue.read(builder.state_dir).pending
    assert entry.path == named and entry.uname_release == "6.1.0-18-cloud-amd64"


@pytest.mark.parametrize("content", [None, b"", b" \n"], ids=["missing", "empty", "blank"])
def test_a_missing_or_empty_secret_is_a_configuration_error_not_an_unreachable_host(
        builder: Builder, tmp_path: Path, content: bytes | None) -> None:
    """No retry makes a secret appear: the asking host says so once (a ConfigError, not
    transient) instead of reporting the build host unreachable and asking forever."""
    path = tmp_path / "build-request.secret"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="build request secret") as raised:
        requester.request_builds([builder.upstream(path)], [_wanted(GOOD)],
                                 tmp_path / "s", "web-1")
    assert str(path) in str(raised.value) and not raised.value.transient
    assert buildqueue.read(builder.state_dir).pending == () and builder.woken == []
