"""The Prometheus client: what the fleet view reads from a real Prometheus scraping real
reconciler metrics, what it sends (credentials), and that every failure closes the gate
with a sentence."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.daemon.metrics import Metrics
from reconciler.desired.waves import WaveCounts
from reconciler.edges.http import prometheus
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError
from reconciler.settings import Settings
from tests.support import prometheus as promserver
from tests.support.upstreams import free_port


def test_the_fleet_view_counts_each_wave_from_the_reconcilers_own_metrics(
        tmp_path: Path) -> None:
    """Three reconcilers' metrics endpoints: two canaries (one healthy on abc, one failing
    on abc), one web host back on old after failing on bad; one query reads every wave."""
    hosts = [Metrics(Store(tmp_path / f"store{n}")) for n in range(3)]
    ports = [free_port() for _ in hosts]
    try:
        for metrics, port in zip(hosts, ports, strict=True):
            metrics.serve(("127.0.0.1", port))
        hosts[0].rollout("fleet", "canary", "abc", host="h0", healthy=True, held_since=0)
        hosts[1].rollout("fleet", "canary", "old", host="h1", healthy=True, held_since=0)
        # Moved on: the old series goes.
        hosts[1].rollout("fleet", "canary", "abc", host="h1", healthy=False, held_since=0)
        hosts[2].rollout("fleet", "web", "bad", host="h2", healthy=False, held_since=0)
        hosts[2].rollout("fleet", "web", "old", host="h2", healthy=True, held_since=0,
                         failed=("bad",))
        with promserver.running(tmp_path / "prom", [f"127.0.0.1:{p}" for p in ports]) as prom:
            prom.wait_up(3)
            client = prometheus.Prometheus(prom.url, "fleet")
            view = client.view()
            assert client.queries == 1
            assert view.error == ""
            assert view.waves == {
                "canary": WaveCounts(2, {"abc": 2}, {"abc": 1}),
                "web": WaveCounts(1, {"old": 1}, {"old": 1}, {"bad": 1}),  # rolled back
            }
            assert client.holds('reconciler_rollout_healthy{wave="web"} == 1') is True
            assert client.holds('reconciler_rollout_healthy{wave="none"}') is False
            assert prometheus.Prometheus(prom.url, "other").view().waves == {}
    finally:
        for metrics in hosts:
            metrics.stop()


def test_unreachable_is_a_closed_gate_with_the_reason() -> None:
    client = prometheus.Prometheus(f"http://127.0.0.1:{free_port()}", "fleet", timeout=1)
    view = client.view()
    assert view.error == (f"Prometheus at {client.url} did not answer: POST "
                          f"{client.url}/api/v1/query: connection refused")
    assert client.holds("up") is None


class _Canned(http.server.BaseHTTPRequestHandler):
    """Stands in for a Prometheus that misbehaves (what a real one never sends)."""

    answer: bytes = b""
    status: int = 200
    seen: list[dict[str, str]] = []  # noqa: RUF012 - one list per test, reset by it

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)


@contextlib.contextmanager
def canned(answer: bytes, status: int = 200) -> Iterator[str]:
    handler = type("Handler", (_Canned,), {"answer": answer, "status": status, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    _Canned.seen = handler.seen


EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


def test_a_bearer_token_or_basic_auth_from_files_goes_with_each_query(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "auth").write_text("ops:s3cret\n")
    with canned(EMPTY) as url:
        base = Settings(prometheus_url=url)
        bearer = prometheus.Prometheus.from_settings(
            replace(base, prometheus_bearer_token_file=tmp_path / "token"))
        basic = prometheus.Prometheus.from_settings(
            replace(base, prometheus_basic_auth_file=tmp_path / "auth"))
        assert bearer is not None and basic is not None
        assert bearer.holds("up") is False and basic.holds("up") is False
    assert [seen["authorization"] for seen in _Canned.seen] == [
        "Bearer t0ken", "Basic b3BzOnMzY3JldA=="]
    assert prometheus.Prometheus.from_settings(Settings()) is None


def test_unreadable_or_malformed_secret_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "auth").write_text("no-colon\n")
    with pytest.raises(ConfigError, match="cannot read prometheus_bearer_token_file"):
        prometheus.Prometheus.from_settings(Settings(
            prometheus_url="http://127.0.0.1:1", prometheus_bearer_token_file=tmp_path / "x"))
    with pytest.raises(ConfigError, match="must hold user:password"):
        prometheus.Prometheus.from_settings(Settings(
            prometheus_url="http://127.0.0.1:1", prometheus_basic_auth_file=tmp_path / "auth"))


@pytest.mark.parametrize(("answer", "status", "says"), [
    (b"<html>", 200, "did not answer: POST {url}/api/v1/query: not valid JSON: "),
    (b'{"status":"error","error":"parse error at char 3"}', 400,
     "answered 400: parse error at char 3"),
    (b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}', 200,
     "answered a scalar, not an instant vector"),
    (b" " * (prometheus.MAX_ANSWER + 10), 200,
     f"did not answer: POST {{url}}/api/v1/query: larger than {prometheus.MAX_ANSWER} bytes"),
])
def test_a_wrong_answer_closes_the_gate_and_says_why(answer: bytes, status: int,
                                                     says: str) -> None:
    with canned(answer, status) as url:
        view = prometheus.Prometheus(url, "fleet").view()
    assert view.error.startswith(f"Prometheus at {url} " + says.format(url=url))
