"""Readiness: a (re)started Falco counts as up once its web server answers ``/healthz``.

Real git, store, server and engine, `reconciler apply` as a user runs it; Falco's image
is this session's stand-in (tests/support/standin.py): like the real Falco it reads
``webserver.enabled``/``listen_port`` from its falco.yaml (8765 in every release), loads
its rules, starts its web server, then opens the driver; ``STANDIN_RULES_SECONDS`` makes
loading the rules slow, as a large rule set does. The stand-ins use the host network, so
/healthz is on this machine's 127.0.0.1:8765 (tests run one Falco at a time).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from reconciler.model.artifacts import DriverKind
from tests.commands.test_apply.test_generations import falco_logs
from tests.support.falcohost import NAME, Host, apply

pytestmark = pytest.mark.docker
HEALTHZ = "http://127.0.0.1:8765/healthz"


def healthz() -> tuple[int, Any]:
    with urllib.request.urlopen(HEALTHZ, timeout=2) as answer:
        return answer.status, json.loads(answer.read())


def test_apply_returns_once_a_slow_falco_answers_healthz(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """Rules that take 4 s to load outlast a 1 s settle: apply waits for /healthz."""
    host = gen_host
    host.publish_driver("0.40.0", DriverKind.KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod", {"STANDIN_RULES_SECONDS": "4"})})
    code, out = apply(host, capsys, "--settle", "1")
    assert code == 0, out
    assert healthz() == (200, {"status": "ok"})  # ready when apply returned, not later
    assert "running with kmod 8.0.0+driver" in falco_logs(docker_client)


def test_a_falco_that_never_answers_healthz_is_rolled_back(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    host = gen_host
    host.publish_driver("0.36.0", DriverKind.KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.36.0", "kmod")})
    assert apply(host, capsys)[0] == 0
    first = docker_client.containers.get(NAME).id

    host.repo.commit({"web.yaml": host.yaml("0.36.0", "kmod", {"STANDIN_RULES_SECONDS": "600"})})
    code, out = apply(host, capsys, "--ready-timeout", "3")
    assert code == 1, out
    assert f"did not answer {HEALTHZ} within 3 s; the previous container was put back" in out
    assert "loading rules" in out  # its last log lines
    back = docker_client.containers.get(NAME)
    assert (back.id, back.status) == (first, "running")


def test_an_image_with_its_web_server_off_gets_the_settle_time_only(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """``webserverPort: null``: nothing to ask, so a Falco still loading its rules after
    the settle time counts as up (the user said there is no /healthz to wait for)."""
    host = gen_host
    host.publish_driver("0.36.0", DriverKind.KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.36.0", "kmod", {"STANDIN_RULES_SECONDS": "600"},
                                            extra="    webserverPort: null\n")})
    code, out = apply(host, capsys, "--settle", "1", "--ready-timeout", "3")
    assert code == 0, out
    assert docker_client.containers.get(NAME).status == "running"
