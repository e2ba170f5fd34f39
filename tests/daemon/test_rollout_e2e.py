"""A staged rollout across four hosts on one machine, gated by a real Prometheus.

Four ``reconciler run`` child processes (hosts web-r<random>-1..4), each with its own store, state
dir, driver-server port, metrics port and host root, all following one manifest
repository, and Debian's ``prometheus`` scraping their metrics every second. The Rollout
puts a deterministic 25% of ``web-*`` in the canary wave (the rollout's name is picked
below so that this share is exactly the first host, computed here with sha256 independently of the
code) and the rest in wave ``web``, with a soak of a few seconds and ``onFailure:
rollback``. The test checks, in order:

1. a push reaches the canary at once and the other hosts only once Prometheus has seen
   the canary healthy on it for the soak, and they said "held: wave web waits for canary"
   meanwhile;
2. with Prometheus down the gate stays closed and says so; once it is back, the wave moves;
3. a push whose Falco crashes on the canary stops there: the canary's pass fails, it rolls
   back to the last revision that passed, and the other hosts never run it (their Falco
   containers never carry its environment);
4. a deny window on wave ``web`` defers it (``reconciler rollout status`` draws the waves
   meanwhile); lifting the window lets it move;
5. the share is stable across restarts: restarted daemons report the same waves.

What stands in for what: Falco is the session's stand-in image of 0.37.1
(tests/support/standin.py), one image per host because each host's Falco must serve its
``/healthz`` on its own port (they share this machine's network; a real fleet's would
each use 8765); ``driver: modern_ebpf`` needs no driver file, as on a host with BTF. The
host roots are the test's (hostname, kernel, os-release). Real: the daemons, git,
Docker, HTTP, Prometheus and its scrapes and queries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import ROOT, Daemon, manifest_repo
from tests.support import prometheus as promserver
from tests.support.standin import Standins
from tests.support.upstreams import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# Host names of this test alone: the engine is shared, and a daemon acting as another
# test's host name (they use web-1) would take that test's Falco containers for its own.
HOSTS = tuple(f"web-r{uuid.uuid4().hex[:6]}-{n}" for n in range(1, 5))
FALCO = "0.37.1"
SOAK = 3


def rollout_name() -> str:
    """A name under which a 25% share of the four hosts is exactly the first (sha256 of
    name, NUL, host; the first 8 bytes mod 10000 below 2500), found without the code under
    test."""
    for n in range(10000):
        name = f"fleet-{n}"
        chosen = [h for h in HOSTS if int.from_bytes(hashlib.sha256(
            f"{name}\0{h}".encode()).digest()[:8], "big") % 10000 < 2500]
        if chosen == [HOSTS[0]]:
            return name
    raise AssertionError("no such name")


def rollout_yaml(name: str, window: str = "") -> str:
    return (f"apiVersion: falco-reconciler/v1\nkind: Rollout\nmetadata: {{name: {name}}}\n"
            "spec:\n  onFailure: rollback\n  waves:\n"
            "  - {name: canary, hostnames: [web-*], percent: 25}\n"
            f"  - name: web\n    soak: {SOAK}s\n{window}")


DENY_NOW = '    windows: [{kind: deny, schedule: "* * * * *", duration: 1h}]\n'


class Fleet:
    def __init__(self, tmp: Path, client: Any, standins: list[Standins],
                 make_host_root: Callable[..., Path]) -> None:
        self.tmp, self.client, self.standins = tmp, client, standins
        self.prefix = f"falco-rollout-{uuid.uuid4().hex[:6]}"
        self.bare, self.work = manifest_repo(tmp)
        self.roots = {h: make_host_root(hostname=h) for h in HOSTS}
        self.metrics = {h: free_port() for h in HOSTS}
        self.listen = {h: free_port() for h in HOSTS}
        self.daemons: dict[str, Daemon] = {}
        self.prometheus_url = ""

    def hosts_yaml(self, env: dict[str, str]) -> str:
        docs = []
        for host, standin in zip(HOSTS, self.standins, strict=True):
            lines = "".join(f'      {k}: "{v}"\n' for k, v in env.items())
            docs.append(
                f"apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {{name: {host}}}\n"
                f"spec:\n  match: {{hostnames: [{host}]}}\n  falco:\n"
                f"    version: {FALCO}\n    driver: modern_ebpf\n"
                f"    containerName: {self.prefix}-{host}\n"
                f"    image: {standin.falco_repository}\n"
                f"    webserverPort: {standin.web_port}\n    env:\n{lines}")
        return "---\n".join(docs)

    def push(self, rollout: str, env: dict[str, str]) -> str:
        revision = self.work.commit({"hosts.yaml": self.hosts_yaml(env),
                                     "rollout.yaml": rollout}, "change")
        self.work.git("push", "-q", "origin", "HEAD:main")
        return revision

    def common(self, host: str) -> list[str]:
        """The settings ``run`` and ``plan`` share for ``host``."""
        folder = self.tmp / host
        return ["--repo", str(self.bare), "--host-root", str(self.roots[host]),
                "--store", str(folder / "store"), "--state-dir", str(folder / "state"),
                "--listen", f"127.0.0.1:{self.listen[host]}",
                "--prometheus-url", self.prometheus_url, "--prometheus-timeout", "1",
                "--privileged", "false"]

    def start(self, host: str) -> Daemon:
        folder = self.tmp / host
        folder.mkdir(exist_ok=True)
        args = [*self.common(host), "--metrics-listen", f"127.0.0.1:{self.metrics[host]}",
                "--settle", "0.5", "--stop-timeout", "2", "--ready-timeout", "20",
                "--poll-interval", "1", "--backoff-max", "1",
                "--base-image", "falco-reconciler/no-such-base-image:0"]
        self.daemons[host] = Daemon(args, folder / "state", folder / "daemon.log").start()
        return self.daemons[host]

    def env_of(self, host: str) -> list[str]:
        found = self.client.containers.get(f"{self.prefix}-{host}")
        env: list[str] = found.attrs["Config"]["Env"]
        return env

    def cleanup(self) -> None:
        for daemon in self.daemons.values():
            if daemon.proc is not None and daemon.proc.poll() is None:
                with contextlib.suppress(Exception):
                    daemon.stop(timeout=20)
        for item in self.client.containers.list(all=True, filters={"name": self.prefix}):
            with contextlib.suppress(Exception):
                item.remove(force=True)


@pytest.fixture
def standins4(docker_client: Any, base_image: str, kernel: Any) -> Iterator[list[Standins]]:
    made = [Standins(docker_client, base_image, kernel, web_port=free_port()) for _ in HOSTS]
    try:
        for each in made:
            each.falco(FALCO)
        yield made
    finally:
        for each in made:
            each.close()


@pytest.fixture
def fleet(tmp_path: Path, docker_client: Any, standins4: list[Standins],
          make_host_root: Any) -> Iterator[Fleet]:
    made = Fleet(tmp_path, docker_client, standins4, make_host_root)
    try:
        yield made
    finally:
        made.cleanup()


def _on(daemon: Daemon, revision: str, timeout: float = 60.0) -> dict[str, Any]:
    return daemon.applied(revision, timeout)


def _held(daemon: Daemon, says: str, timeout: float = 30.0) -> dict[str, Any]:
    return daemon.wait_for(lambda s: says in (s.get("held") or ""), timeout,
                           f"held saying {says!r}")


def _events(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in daemon.log.read_text().splitlines()
            if f'"{name}"' in line]


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def test_a_push_rolls_wave_by_wave_and_a_crashing_one_stops_at_the_canary(
        fleet: Fleet, tmp_path: Path) -> None:
    name = rollout_name()
    plain = rollout_yaml(name)
    first = fleet.push(plain, {"STEP": "0"})
    with promserver.running(tmp_path / "prom", [
            f"127.0.0.1:{fleet.metrics[h]}" for h in HOSTS]) as prom:
        fleet.prometheus_url = prom.url
        daemons = [fleet.start(h) for h in HOSTS]
        for daemon in daemons:  # hosts that never ran anything take the head
            _on(daemon, first, 90)
        prom.wait_up(len(HOSTS))
        canary, web = daemons[0], daemons[1:]

        # 1. Canary first, then the rest after the soak, saying why they wait.
        second = fleet.push(plain, {"STEP": "1"})
        _held(web[0], "held: wave web waits for canary")
        done = _on(canary, second)
        for daemon in web:
            status = _on(daemon, second)
            assert _epoch(status["appliedAt"]) - _epoch(done["appliedAt"]) >= SOAK
            assert "STEP=1" in fleet.env_of(HOSTS[daemons.index(daemon)])

        # 2. Prometheus down: the gate stays closed and says so; back: the wave moves.
        prom.stop()
        third = fleet.push(plain, {"STEP": "2"})
        _on(canary, third)
        status = _held(web[0], "gate closed: Prometheus at")
        assert "did not answer" in status["held"] and "connection refused" in status["held"]
        time.sleep(SOAK + 1)
        assert all(d.status()["appliedRevision"] == second for d in web)
        prom.start()
        for daemon in web:
            _on(daemon, third)

        # 3. A push whose Falco crashes: the canary fails, rolls back; nobody else runs it.
        bad = fleet.push(plain, {"STEP": "3", "STANDIN_CRASH": "1"})
        _held(canary, f"held: {bad[:12]} failed", 90)
        _on(canary, third)
        assert [(e["failed"], e["to"]) for e in _events(canary, "rollout.rolled_back")] == [
            (bad, third)]
        assert "STANDIN_CRASH=1" not in fleet.env_of(HOSTS[0])
        _held(web[0], f"held: {bad[:12]} failed (wave canary")
        time.sleep(SOAK + 1)
        for daemon, host in zip(web, HOSTS[1:], strict=True):
            assert daemon.status()["appliedRevision"] == third
            assert "STANDIN_CRASH=1" not in fleet.env_of(host)
            assert bad not in [e["revision"] for e in _events(daemon, "revision.applied")]

        # 4. A deny window defers wave web; lifting it lets the wave move.
        windowed = fleet.push(rollout_yaml(name, DENY_NOW), {"STEP": "4"})
        _on(canary, windowed)
        _held(web[0], "held: wave web is in a deny window (* * * * * for 1h)")
        time.sleep(SOAK + 1)
        assert web[0].status()["appliedRevision"] == third
        drawn = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", "rollout", "status", "--repo",
             str(fleet.bare), "--state-dir", str(tmp_path / "cli"), "--prometheus-url",
             prom.url], capture_output=True, text=True, check=True, cwd=ROOT).stdout
        assert f"wave canary: 1 host(s), 1 on {windowed[:12]}" in drawn
        assert f"wave web: 3 host(s), 0 on {windowed[:12]}, soak {SOAK}s; gate open" in drawn
        assert f"  {HOSTS[1]:<24} {third[:12]}  healthy" in drawn
        planned = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", "plan", *fleet.common(HOSTS[1])],
            capture_output=True, text=True, check=True, cwd=ROOT).stdout
        assert planned.startswith("held: wave web is in a deny window"), planned
        assert f"at revision {third[:12]}" in planned  # the revision it keeps, planned
        lifted = fleet.push(plain, {"STEP": "5"})
        for daemon in daemons:
            _on(daemon, lifted)

        # 5. The share is stable across restarts: the same waves, as Prometheus sees them.
        def waves() -> dict[str, str]:
            rows = prom.query(f'reconciler_rollout_healthy{{rollout="{name}"}}')
            by_port = {str(fleet.metrics[h]): h for h in HOSTS}
            return {by_port[str(r["metric"]["instance"]).rsplit(":", 1)[1]]:  # type: ignore[index]
                    str(r["metric"]["wave"]) for r in rows}  # type: ignore[index]
        expected = dict(zip(HOSTS, ("canary", "web", "web", "web"), strict=True))
        assert waves() == expected
        for daemon in daemons[:2]:
            daemon.stop()
        for host in HOSTS[:2]:
            fleet.start(host)
        for again in (fleet.daemons[HOSTS[0]], fleet.daemons[HOSTS[1]]):
            pid = again.proc.pid if again.proc else None
            again.wait_for(lambda s, pid=pid: (s.get("lastPass") or {}).get("result") == "ok"
                           and s.get("pid") == pid, 60, "a pass after restart")
        time.sleep(2)  # a scrape of the restarted daemons
        assert waves() == expected
