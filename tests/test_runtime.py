"""The composition root: what it connects with, and the daemon it wires.

The engine is the shipped fake (``edges/docker/fake.py``), standing in for a Docker
connection so the timeouts each connection is opened with can be recorded; the daemon's
server, file watches and alerts are the real ones, on loopback and a temporary folder.
"""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime
from reconciler.edges.docker.fake import FakeEngine
from reconciler.errors import ConfigError
from reconciler.settings import Settings


@dataclass
class Connections:
    """A ``connect`` that records the timeout of each connection it opens."""

    timeouts: list[float] = field(default_factory=list)
    engines: list[ClosingEngine] = field(default_factory=list)

    def __call__(self, timeout: float) -> ClosingEngine:
        self.timeouts.append(timeout)
        self.engines.append(ClosingEngine())
        return self.engines[-1]


@dataclass
class ClosingEngine(FakeEngine):
    closed: int = 0

    def close(self) -> None:
        self.closed += 1


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    conf = Settings(repo=str(tmp_path / "no-repo"), host_root=root, store=tmp_path / "store",
                    state_dir=tmp_path / "state", listen="127.0.0.1:0", docker_events=False,
                    build_timeout=1800.0)
    return replace(conf, **changes)


def test_engine_calls_get_an_api_timeout_and_builds_their_own_long_one(tmp_path: Path) -> None:
    connections = Connections()
    conf = _settings(tmp_path)
    with runtime.open_runtime(conf, connect=connections) as rt:
        assert connections.timeouts == [runtime.ENGINE_TIMEOUT]
        assert conf.build_timeout > runtime.ENGINE_TIMEOUT
        builds = rt.build_engine()
        assert rt.build_engine() is builds and builds is not rt.engine
        assert connections.timeouts == [runtime.ENGINE_TIMEOUT, conf.build_timeout]
    assert [e.closed for e in connections.engines] == [1, 1]


def test_the_daemons_passes_open_the_engine_with_the_api_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pass of ``run`` connects with the API call's timeout, not the build's (1800 s:
    a hung engine call would block the daemon for half an hour)."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    connections = Connections()
    conf = _settings(tmp_path)
    with runtime.open_daemon(conf, connect=connections) as daemon:
        with daemon.runner.open_runtime() as rt:
            assert connections.timeouts == [runtime.ENGINE_TIMEOUT]
            rt.build_engine()
        assert connections.timeouts == [runtime.ENGINE_TIMEOUT, conf.build_timeout]


def test_alerts_name_the_host_as_plans_do(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans name the host by ``<host_root>/etc/hostname``; alerts must say the same name,
    not the name of the machine the daemon happens to run on."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    conf = _settings(tmp_path)
    (conf.host_root / "etc" / "hostname").write_text("# the fleet's name\nedge-7\n")
    assert socket.gethostname() != "edge-7"
    with runtime.open_daemon(conf, connect=Connections()) as daemon:
        assert daemon.alerts.host == "edge-7"
    assert runtime.host_name(Settings(hostname="web-1", host_root=conf.host_root)) == "web-1"


def test_the_daemon_serves_the_store_and_stops_everything_it_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    conf = _settings(tmp_path)
    conf.store.mkdir()
    with runtime.open_daemon(conf, connect=Connections()) as daemon:
        url = daemon.server.url
        # The real port replaces the ephemeral one: Falco is told where to download from.
        assert daemon.settings.listen.endswith(f":{daemon.server.address[1]}")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
            assert answer.status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/healthz", timeout=10)


def test_serve_and_run_get_the_same_server_limits(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One construction of the server: ``serve``'s and the daemon's allow as many
    connections (both sized by the descriptor limit raised in ``cli.entry``)."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    conf = _settings(tmp_path)
    served = runtime.driver_server(runtime.open_store(conf), ("127.0.0.1", 0), workers=8)
    with runtime.open_daemon(conf, connect=Connections()) as daemon:
        assert daemon.server.config == served.config


def test_the_webhook_secret_comes_from_its_file_else_the_settings(tmp_path: Path) -> None:
    from_env = _settings(tmp_path, webhook_secret=" from-env\n")
    assert runtime.webhook_secret(from_env) == b"from-env"
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text("from-file\n")
    from_file = _settings(tmp_path, webhook_secret="from-env", webhook_secret_file=secret_file)
    assert runtime.webhook_secret(from_file) == b"from-file"
    missing = _settings(tmp_path, webhook_secret_file=tmp_path / "nothing")
    with pytest.raises(ConfigError, match="cannot read the webhook secret"):
        runtime.webhook_secret(missing)
