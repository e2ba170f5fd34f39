"""``POST /v1/build-requests`` over real HTTP against the real server and a real queue in
the state dir: only signed, sane, in-bound requests queue anything and wake the daemon."""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.edges.state import buildqueue
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.httpd.intake import Intake
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.model import buildrequests, hmacsig

SECRET = b"fleet-secret"
GOOD = "8.0.0+driver/x86_64/falco_debian_6.1.0-18-cloud-amd64_1.ko"
OTHER = "8.0.0+driver/x86_64/falco_debian_6.1.0-20-cloud-amd64_1.ko"
THIRD = "9.0.0+driver/x86_64/falco_debian_6.1.0-21-cloud-amd64_1.ko"


@dataclass
class BuildHost:
    server: DriverServer
    state_dir: Path
    woken: list[str] = field(default_factory=list)

    def post(self, body: bytes, signature: str | None = "sign", *,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        host, port = self.server.address
        conn = http.client.HTTPConnection(host, port, timeout=5)
        sent = dict(headers or {})
        if signature == "sign":
            sent[buildrequests.SIGNATURE_HEADER] = hmacsig.header_value(SECRET, body)
        elif signature is not None:
            sent[buildrequests.SIGNATURE_HEADER] = signature
        conn.request("POST", buildrequests.PATH, body=body, headers=sent)
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        return answer.status, dict(answer.getheaders()), data

    def queued(self) -> list[str]:
        return [e.path for e in buildqueue.read(self.state_dir).pending]


def _body(*artifacts: object, host: str = "edge-7", sent_at: int | None = None) -> bytes:
    """A build request as an asking host sends it: its time and a fresh nonce signed in."""
    return json.dumps({"host": host, "artifacts": list(artifacts),
                       "time": int(time.time()) if sent_at is None else sent_at,
                       "nonce": secrets.token_urlsafe(16)}).encode()


def _start(tmp_path: Path, *, rate: float = 600, limit: int = 64) -> BuildHost:
    store = Store(tmp_path / "store")
    woken: list[str] = []
    intake = Intake(SECRET, BuildQueue(tmp_path / "state", limit), store, host_arch="x86_64",
                    limiter=RateLimiter(rate), wake=woken.append)
    config = ServerConfig(workers=4, io_timeout=5.0, header_timeout=2.0, host_arch="x86_64")
    server = DriverServer(store, ("127.0.0.1", 0), config=config, intake=intake)
    return BuildHost(server.start(), tmp_path / "state", woken)


@pytest.fixture
def build_host(tmp_path: Path) -> Iterator[BuildHost]:
    host = _start(tmp_path)
    try:
        yield host
    finally:
        host.server.stop()


def test_a_signed_request_is_queued_durably_and_wakes_the_daemon(build_host: BuildHost) -> None:
    status, _headers, data = build_host.post(_body(
        GOOD, {"path": OTHER, "unameRelease": "6.1.0-20-cloud-amd64"}))
    assert status == 202
    verdicts = json.loads(data)["artifacts"]
    assert [(v["path"], v["verdict"]) for v in verdicts] == [(GOOD, "queued"), (OTHER, "queued")]
    assert build_host.queued() == [GOOD, OTHER]
    entry = buildqueue.read(build_host.state_dir).pending[0]
    assert entry.hosts == ("edge-7",) and entry.clients == ("127.0.0.1",)
    assert build_host.woken == ["build-request"]
    # A second host asking for the same artifact is noted, not queued twice.
    status, _headers, data = build_host.post(_body(GOOD, host="edge-8"))
    assert status == 202 and json.loads(data)["artifacts"][0]["verdict"] == "already queued"
    assert buildqueue.read(build_host.state_dir).pending[0].hosts == ("edge-7", "edge-8")
    assert build_host.queued() == [GOOD, OTHER]


def test_a_real_release_that_differs_from_the_loaders_name_is_kept(build_host: BuildHost) -> None:
    # Debian, Falco 0.35+: the loader names the kernel from `uname -v`.
    named = "8.0.0+driver/x86_64/falco_debian_6.1.76-1-cloud-amd64_1.ko"
    status, _h, _d = build_host.post(_body({"path": named, "unameRelease": "6.1.0-18-cloud-amd64"}))
    assert status == 202
    assert buildqueue.read(build_host.state_dir).pending[0].uname_release == "6.1.0-18-cloud-amd64"


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "deadbeef",
                                       hmacsig.header_value(b"wrong-secret", _body(GOOD))])
def test_unsigned_or_badly_signed_requests_make_nothing(
        build_host: BuildHost, signature: str | None) -> None:
    status, _headers, _data = build_host.post(_body(GOOD), signature)
    assert status == 401
    assert build_host.queued() == [] and build_host.woken == []
    assert not buildqueue.path(build_host.state_dir).exists()


def test_a_signature_of_other_bytes_does_not_pass(build_host: BuildHost) -> None:
    signed = _body(GOOD)
    sent = _body(OTHER)
    status, _h, _d = build_host.post(sent, hmacsig.header_value(SECRET, signed))
    assert status == 401 and build_host.queued() == []


def test_oversize_bodies_are_refused_unread_and_a_length_is_required(
        build_host: BuildHost) -> None:
    huge = b"x" * (buildrequests.MAX_BODY + 1)
    status, headers, _data = build_host.post(huge)
    assert status == 413 and headers.get("Connection") == "close"
    # No Content-Length: a raw request, as http.client always sends one.
    host, port = build_host.server.address
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(b"POST /v1/build-requests HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 411 ")
    assert build_host.queued() == [] and build_host.woken == []


def test_each_artifact_gets_its_own_verdict_and_reason(build_host: BuildHost) -> None:
    entries = [
        "7.9.9+driver/x86_64/falco_debian_6.1.0-18-cloud-amd64_1.ko",  # unknown driver version
        "8.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.ko",  # foreign arch
        "8.0.0+driver/x86_64/falco_nosuchos_6.1.0-18-cloud-amd64_1.ko",  # unknown target
        "8.0.0+driver/x86_64/falco_ubuntu-generic_5.15.0-91-generic_101.ko",  # no apt source
        "../../etc/passwd",
        {"path": GOOD, "unameRelease": "$(reboot)"},
        GOOD,
    ]
    status, _h, data = build_host.post(_body(*entries))
    assert status == 202
    verdicts = json.loads(data)["artifacts"]
    assert [v["verdict"] for v in verdicts] == ["rejected"] * 6 + ["queued"]
    reasons = [v["reason"] for v in verdicts[:6]]
    assert "unknown driver version 7.9.9+driver" in reasons[0]
    assert "architecture aarch64" in reasons[1] and "x86_64 only" in reasons[1]
    assert "unknown target" in reasons[2]
    assert "kernelUrls" in reasons[3]
    assert "not a store path" in reasons[4]
    assert "unameRelease" in reasons[5]
    assert build_host.queued() == [GOOD]


def test_a_request_with_nothing_buildable_is_400_and_queues_nothing(
        build_host: BuildHost) -> None:
    status, _h, data = build_host.post(_body(
        "8.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.ko"))
    assert status == 400 and json.loads(data)["artifacts"][0]["verdict"] == "rejected"
    status, _h, data = build_host.post(b'{"host": "edge-7", "artifacts": "all"}')
    assert status == 400 and b"non-empty list" in data
    assert build_host.queued() == [] and build_host.woken == []


def test_what_the_store_holds_is_available_not_queued(build_host: BuildHost,
                                                       tmp_path: Path) -> None:
    key = buildrequests.parse(_body(GOOD))[1][0]
    assert isinstance(key, buildrequests.Requested)
    built = tmp_path / "falco.ko"
    built.write_bytes(b"\x7fELF not a real module")
    Store(tmp_path / "store").publish(key.key, built)
    status, _h, data = build_host.post(_body(GOOD))
    assert status == 202 and json.loads(data)["artifacts"][0]["verdict"] == "available"
    assert build_host.queued() == [] and build_host.woken == []


def test_each_client_is_rate_limited(tmp_path: Path) -> None:
    host = _start(tmp_path, rate=2)
    try:
        assert host.post(_body(GOOD))[0] == 202
        assert host.post(_body(GOOD))[0] == 202
        status, headers, _data = host.post(_body(GOOD))
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 30
        # Unsigned requests are charged too: they cannot be used to guess a signature.
        assert host.post(_body(GOOD), None)[0] == 429
    finally:
        host.server.stop()


def test_a_full_queue_is_503_and_takes_nothing_more(tmp_path: Path) -> None:
    host = _start(tmp_path, limit=2)
    try:
        assert host.post(_body(GOOD, OTHER))[0] == 202
        status, headers, _data = host.post(_body(THIRD))
        assert status == 503 and int(headers["Retry-After"]) > 0
        assert host.queued() == [GOOD, OTHER]
        assert host.post(_body(GOOD))[0] == 202  # already queued: still fits
    finally:
        host.server.stop()


def test_without_accept_build_requests_the_route_does_not_exist(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with DriverServer(store, ("127.0.0.1", 0),
                      config=ServerConfig(workers=2, host_arch="x86_64")) as plain:
        host = BuildHost(plain, tmp_path / "state")
        status, headers, _data = host.post(_body(GOOD))
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        conn = http.client.HTTPConnection(*plain.address, timeout=5)
        conn.request("GET", buildrequests.PATH)
        assert conn.getresponse().status == 404
        conn.close()
    assert not (tmp_path / "state").exists()


def test_get_on_the_route_of_a_build_host_is_405(build_host: BuildHost) -> None:
    conn = http.client.HTTPConnection(*build_host.server.address, timeout=5)
    conn.request("GET", buildrequests.PATH)
    answer = conn.getresponse()
    assert answer.status == 405 and answer.getheader("Allow") == "POST"
    conn.close()


def test_a_trickled_body_is_dropped_after_the_header_timeout(build_host: BuildHost) -> None:
    host, port = build_host.server.address
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"POST /v1/build-requests HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert raw.recv(4096).startswith(b"HTTP/1.1 408 ")
    assert build_host.queued() == []


# -- replays and floods (issue 20) ---------------------------------------------------------


def test_a_replayed_request_is_refused_even_after_its_build_failed(
        build_host: BuildHost) -> None:
    """The signed body carries its time and nonce: the same bytes are taken once."""
    body = _body(GOOD)
    signature = hmacsig.header_value(SECRET, body)
    assert build_host.post(body, signature)[0] == 202
    BuildQueue(build_host.state_dir, 64).settle({GOOD: "the headers were not found"})
    assert build_host.queued() == []
    status, _h, data = build_host.post(body, signature)
    assert status == 401 and b"replay" in data
    assert build_host.queued() == []


def test_a_stale_or_unstamped_request_is_refused(build_host: BuildHost) -> None:
    stale = _body(GOOD, sent_at=int(time.time()) - 3600)
    status, _h, data = build_host.post(stale)
    assert status == 401 and b"stale" in data
    unstamped = json.dumps({"host": "edge-7", "artifacts": [GOOD]}).encode()
    status, _h, data = build_host.post(unstamped)
    assert status == 400 and b"time must be" in data
    assert build_host.queued() == []


def test_bad_signatures_from_many_addresses_are_capped_together(tmp_path: Path) -> None:
    """Per-address buckets do not stop a flood from many addresses; a global one does."""
    store = Store(tmp_path / "store")
    intake = Intake(SECRET, BuildQueue(tmp_path / "state", 8), store, host_arch="x86_64",
                    limiter=RateLimiter(600), wake=lambda _reason: None,
                    unsigned=RateLimiter(3, max_clients=1))
    config = ServerConfig(workers=2, host_arch="x86_64")
    with DriverServer(store, ("127.0.0.1", 0), config=config, intake=intake) as server:
        statuses = []
        for n in range(5):
            conn = http.client.HTTPConnection(*server.address, timeout=5,
                                              source_address=(f"127.0.0.{n + 2}", 0))
            conn.request("POST", buildrequests.PATH, body=_body(GOOD),
                         headers={buildrequests.SIGNATURE_HEADER: "sha256=" + "0" * 64})
            statuses.append(conn.getresponse().status)
            conn.close()
        assert statuses == [401, 401, 401, 429, 429]
        # A signed request is still checked and taken.
        host = BuildHost(server, tmp_path / "state")
        assert host.post(_body(GOOD))[0] == 202


def test_a_short_body_gets_408_within_the_header_timeout(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    intake = Intake(SECRET, BuildQueue(tmp_path / "state", 8), store, host_arch="x86_64",
                    limiter=RateLimiter(600), wake=lambda _reason: None)
    config = ServerConfig(workers=1, header_timeout=0.5, host_arch="x86_64")
    with DriverServer(store, ("127.0.0.1", 0), config=config, intake=intake) as server, \
            socket.create_connection(server.address, timeout=3) as raw:
        raw.sendall(b"POST /v1/build-requests HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        assert raw.recv(4096).startswith(b"HTTP/1.1 408 ")  # in 0.5 s, not 30
