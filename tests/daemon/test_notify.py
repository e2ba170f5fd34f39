"""The systemd side: the unit file passes ``systemd-analyze verify``, the example config is
accepted, and the notify protocol is spoken on a real ``NOTIFY_SOCKET`` datagram socket,
by the Notifier and by the daemon itself (READY once serving, WATCHDOG pings, STATUS,
STOPPING), here with no Docker engine at all: the server must serve regardless."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import settings
from reconciler.commands import run as run_command
from reconciler.daemon.notify import Notifier
from tests.conftest import GitRepo
from tests.daemon.conftest import ROOT, host_yaml

UNIT = ROOT / "systemd" / "falco-reconciler.service"


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and systemd-analyze is missing (.ci/setup installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    return found


def _verify(unit_text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    # The unit names the installed /usr/local/bin/reconciler; point it at this checkout's
    # so verify can check that the binary exists.
    unit = folder / "falco-reconciler.service"
    unit.write_text(unit_text.replace("/usr/local/bin/reconciler",
                                      str(Path(sys.executable).with_name("reconciler"))))
    return subprocess.run([_analyze(), "verify", str(unit)], capture_output=True, text=True,
                          check=False, timeout=60)


def test_the_unit_verifies_and_a_broken_one_does_not(tmp_path: Path) -> None:
    good = _verify(UNIT.read_text(), tmp_path)
    assert good.returncode == 0, good.stderr
    assert "falco-reconciler.service" not in good.stderr, good.stderr  # no warning about it
    bad = _verify(UNIT.read_text().replace("Type=notify", "Type=notifyy"), tmp_path)
    # The check is live: systemd names the bad line (and, lenient, carries on).
    assert re.search(r"falco-reconciler\.service:\d+: Failed to parse service type, "
                     r"ignoring: notifyy", bad.stderr), bad.stderr


def test_the_unit_is_a_hardened_notify_service_reloaded_by_sighup() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["WatchdogSec"]
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["ExecStart"].split()[1:3] == ["run", "--config"]
    assert service["EnvironmentFile"].startswith("-")
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
        assert service[key] == value, key
    assert "/var/lib/falco-reconciler" in service["ReadWritePaths"]


def test_the_unit_allows_the_server_its_connections() -> None:
    """Each idle keep-alive client holds a descriptor: systemd's default soft limit (1024)
    would leave the daemon's server 960 connections, against 10,000 for ``serve``."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    soft, _, hard = unit["Service"]["LimitNOFILE"].partition(":")
    assert int(soft) >= 10_064 and int(hard or soft) >= int(soft)


def test_the_example_config_and_environment_are_accepted() -> None:
    parser = __import__("argparse").ArgumentParser()
    sub = parser.add_subparsers()
    run_command.register(sub)
    env = dict(line.split("=", 1) for line in
               (ROOT / "systemd" / "environment").read_text().splitlines()
               if line and not line.startswith("#"))
    args = parser.parse_args(["run", "--config", str(ROOT / "systemd" / "config.yaml")])
    conf = settings.resolve(args, env={})
    assert conf.state_dir == Path("/var/lib/falco-reconciler")
    # Not 8765: on the host network that is Falco's own web server's port.
    assert conf.listen_address == ("127.0.0.1", 8000)
    # Not a source no Falco release loads (bookworm's falcosecurity-scap-dkms is a 2022
    # snapshot): the libs release archive of each driver version.
    assert conf.source == settings.DEFAULT_SOURCE
    assert all(k.startswith("RECONCILER_") for k in env)
    flags = {a.dest for a in sub.choices["run"]._actions}
    assert {k[len("RECONCILER_"):].lower() for k in env} <= flags


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(10)
    try:
        yield sock, path
    finally:
        sock.close()


def _messages(sock: socket.socket, until: str, limit: float = 15.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(until in m.split("\n") for m in got):
            return got
    raise AssertionError(f"no {until} among {got}")


def test_notifier_sends_ready_status_watchdog_and_stopping(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval == 0.1
    notifier.ready("serving x")
    first = sock.recv(4096).decode().split("\n")
    assert "READY=1" in first and "STATUS=serving x" in first
    assert f"MAINPID={os.getpid()}" in first
    notifier.start_watchdog(lambda: True)
    assert "WATCHDOG=1" in _messages(sock, "WATCHDOG=1")[-1]
    notifier.stopping()
    assert "STOPPING=1" in _messages(sock, "STOPPING=1")[-1]
    notifier.close()


def test_notifier_reaches_an_abstract_socket_and_ignores_a_foreign_watchdog() -> None:
    name = f"reconciler-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "5000000",
                             "WATCHDOG_PID": str(os.getpid() + 1)})
        assert notifier.watchdog_interval is None  # meant for another process
        notifier.status("hello")
        assert sock.recv(100) == b"STATUS=hello"
        notifier.close()
    assert not Notifier({}).enabled


def test_the_daemon_is_ready_once_serving_pings_the_watchdog_and_says_stopping(
    notify_socket: tuple[socket.socket, str], tmp_path: Path,
) -> None:
    sock, path = notify_socket
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"web.yaml": host_yaml("falco-notify-test", "example/falco")})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000",
           "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    env.pop("WATCHDOG_PID", None)
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "run", "--repo", str(repo.path),
             "--hostname", "web-1", "--store", str(tmp_path / "store"), "--state-dir",
             str(tmp_path / "state"), "--listen", f"127.0.0.1:{port}", "--no-docker-events"],
            env=env, stdout=log, stderr=log, cwd=ROOT)
    try:
        got = _messages(sock, "READY=1", 30)
        before = list(got)
        ready = next(m for m in got if "READY=1" in m.split("\n"))
        assert f"MAINPID={proc.pid}" in ready.split("\n")
        # Ready means serving, even with no Docker engine to talk to.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        assert f"STATUS=serving http://127.0.0.1:{port}; reconciling {repo.path}" in (
            ready.split("\n"))
        # The first pass says so (start, and the poll timer that is due at once), and the
        # watchdog is pinged while it runs and after.
        pass_status = "STATUS=pass 1 running (poll, start)"
        if pass_status not in before:
            _messages(sock, pass_status)
        assert "WATCHDOG=1" in _messages(sock, "WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        assert any("STOPPING=1" in m for m in _messages(sock, "STOPPING=1"))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
