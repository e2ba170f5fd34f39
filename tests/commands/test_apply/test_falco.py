"""`reconciler apply` end to end: real git, real store, our real server, a real engine.

Stand-ins, because they cannot exist on these machines: Falco's image (tests/support/
standin.py: the Falco 0.32 image's entrypoint, bash driver loader and Falco, behaving as
the real ones do), the kernel's module state (tests/support/standin_kernel.py: the
loader's insmod lands there, Falco opens the module there), the driver file itself
(loading a module is impossible here, and real builds are tested in tests/builder: the
file carries the vermagic, API and schema strings the stand-ins check), and --privileged
(this engine cannot grant every capability). The host's facts are the machine's own
(host root /), acting as host web-1. Each Falco generation's own contract is covered in
tests/commands/test_generations.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.model.artifacts import DriverKind
from tests.support import standin
from tests.support.falcohost import NAME, Host, apply, plan

pytestmark = pytest.mark.docker


@pytest.mark.parametrize(("driver", "kind", "env_key", "opened"), [
    ("kmod", DriverKind.KMOD, "DRIVERS_REPO", "running with kmod 2.0.0+driver"),
    ("ebpf", DriverKind.EBPF, "FALCO_BPF_PROBE", "running with ebpf probe /root/.falco/"),
])
def test_falco_starts_and_downloads_its_driver_from_our_server(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
    driver: str, kind: DriverKind, env_key: str, opened: str,
) -> None:
    host.repo.commit({"web.yaml": host.yaml("0.32.2", driver)})
    key = host.publish_driver("0.32.2", kind)
    code, out = apply(host, capsys)
    assert code == 0, out
    running = docker_client.containers.get(NAME)
    assert running.status == "running"
    env = dict(e.split("=", 1) for e in running.attrs["Config"]["Env"])
    assert env_key in env
    logs = running.logs().decode()
    assert opened in logs, logs
    # The loader's encoding of the driver version reached us, for the exact file.
    assert f"2.0.0%2Bdriver/x86_64/{key.filename}" in logs, logs
    assert ("falco" in kernel.loaded()) is (kind is DriverKind.KMOD)
    assert plan(host, capsys)["changes"] == []


def test_env_change_replaces_and_a_crashing_falco_is_rolled_back(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any,
) -> None:
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    host.publish_driver("0.32.2", DriverKind.KMOD)
    assert apply(host, capsys)[0] == 0
    first = docker_client.containers.get(NAME).id

    host.repo.commit({"web.yaml": host.yaml("0.32.2", env={"FALCO_LOG_LEVEL": "debug"})})
    code, out = apply(host, capsys)
    assert code == 0, out
    second = docker_client.containers.get(NAME)
    assert second.id != first
    assert "FALCO_LOG_LEVEL=debug" in second.attrs["Config"]["Env"]

    host.repo.commit({"web.yaml": host.yaml("0.32.2", env={"STANDIN_CRASH": "1"})})
    code, out = apply(host, capsys)
    assert code == 1
    assert "the previous container was put back" in out
    assert "crashing as asked" in out  # the crashed container's last log lines
    back = docker_client.containers.get(NAME)
    assert (back.id, back.status) == (second.id, "running")
    assert len(docker_client.containers.list(all=True, filters={"name": NAME})) == 1


def test_missing_driver_on_the_server_never_starts_falco(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any,
) -> None:
    """With no driver in the store and no way to build it, apply fails and starts nothing."""
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    code = cli.main(host.args("apply", "--yes", "--settle", "1", "--base-image",
                              "falco-reconciler/no-such-base-image:0"))
    out = capsys.readouterr()
    assert code == 1
    assert "✗ build" in out.out
    assert "· create" in out.out and "is not ready" in out.out
    assert not docker_client.containers.list(all=True, filters={"name": NAME})


def test_foreign_container_is_only_replaced_with_adopt(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, base_image: str,
    clean_containers: list[str],
) -> None:
    clean_containers.append(NAME)
    foreign = docker_client.containers.run(base_image, ["sleep", "infinity"], name=NAME,
                                           network_mode="none", detach=True)
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    host.publish_driver("0.32.2", DriverKind.KMOD)
    code, out = apply(host, capsys)
    assert code == 0
    assert "not ours" in out
    assert docker_client.containers.get(NAME).id == foreign.id
    code, out = apply(host, capsys, "--adopt")
    assert code == 0, out
    assert docker_client.containers.get(NAME).id != foreign.id


def test_saved_plan_applies_exactly_and_refuses_when_anything_moved(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, tmp_path: Path,
) -> None:
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    host.publish_driver("0.32.2", DriverKind.KMOD)
    saved = tmp_path / "web.plan"
    assert cli.main(host.args("plan", "--out", str(saved))) == 0
    capsys.readouterr()

    # The branch moves on: the saved plan is stale.
    host.repo.commit({"web.yaml": host.yaml("0.32.2", env={"A": "1"})})
    assert cli.main(host.args("apply", str(saved), "--settle", "1")) == 1
    assert "the manifests moved from" in capsys.readouterr().err
    assert not docker_client.containers.list(all=True, filters={"name": NAME})

    # A fresh saved plan applies, without asking.
    assert cli.main(host.args("plan", "--out", str(saved))) == 0
    capsys.readouterr()
    assert cli.main(host.args("apply", str(saved), "--settle", "1")) == 0
    assert docker_client.containers.get(NAME).status == "running"

    # The actual state moves (Falco stopped behind our back): refused.
    assert cli.main(host.args("plan", "--out", str(saved))) == 0
    docker_client.containers.get(NAME).stop(timeout=1)
    capsys.readouterr()
    assert cli.main(host.args("apply", str(saved), "--settle", "1")) == 1
    assert "actual state" in capsys.readouterr().err


def test_drift_behind_our_back_is_mended(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any,
) -> None:
    """docker update (restart policy), docker stop, docker rm: each is seen and mended."""
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    host.publish_driver("0.32.2", DriverKind.KMOD)
    assert apply(host, capsys)[0] == 0

    docker_client.containers.get(NAME).update(restart_policy={"Name": "no"})
    assert [c["reason"] for c in plan(host, capsys)["changes"]] == [
        "container spec changed: restart policy is no, want always"]
    assert apply(host, capsys)[0] == 0
    assert plan(host, capsys)["changes"] == []

    docker_client.containers.get(NAME).stop(timeout=1)
    assert apply(host, capsys)[0] == 0
    assert docker_client.containers.get(NAME).status == "running"

    docker_client.containers.get(NAME).remove(force=True)
    assert [c["op"] for c in plan(host, capsys)["changes"]] == ["create"]
    assert apply(host, capsys)[0] == 0
    assert docker_client.containers.get(NAME).status == "running"


def test_a_crash_looping_falco_is_replaced(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any,
) -> None:
    """The engine will not rename a container in a restart loop; replace stops it first."""
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    key = host.publish_driver("0.32.2", DriverKind.KMOD)
    assert apply(host, capsys)[0] == 0
    host.store.remove(key)  # its next start cannot download the driver: it will crash
    docker_client.containers.get(NAME).exec_run(["bash", "-c", "kill -TERM 1"])
    for _ in range(100):
        looping = docker_client.containers.get(NAME).attrs["RestartCount"] > 0
        if looping:
            break
        time.sleep(0.1)
    assert looping
    host.publish_driver("0.32.2", DriverKind.KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.32.2", env={"FALCO_LOG_LEVEL": "debug"})})
    code, out = apply(host, capsys)
    assert code == 0, out
    assert docker_client.containers.get(NAME).status == "running"
    assert len(docker_client.containers.list(all=True, filters={"name": NAME})) == 1


def test_driver_none_starts_falco_without_any_artifact_on_the_hosts_own_module(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """``driver: none``: the host provides the driver (here a module already loaded); the
    image's loader is skipped and nothing is built or served."""
    assert kernel.insert(standin.driver_file("kmod", "2.0.0+driver", os.uname().release)) == ""
    host.repo.commit({"web.yaml": host.yaml("0.32.2", "none")})
    assert [c["op"] for c in plan(host, capsys)["changes"]] == ["create"]
    code, out = apply(host, capsys)
    assert code == 0, out
    running = docker_client.containers.get(NAME)
    assert "SKIP_DRIVER_LOADER=1" in running.attrs["Config"]["Env"]
    logs = running.logs().decode()
    assert "no driver loader" in logs and "running with kmod 2.0.0+driver" in logs, logs
    assert not list(host.store.root.rglob("falco_*"))
