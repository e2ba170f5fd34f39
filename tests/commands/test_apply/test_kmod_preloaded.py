"""kmod-preloaded: the module is inserted on the host before Falco starts without its loader.

These machines cannot load kernel modules, so the insmod/rmmod commands are stand-in
scripts that record their arguments, hand the module to the stand-in kernel
(tests/support/standin_kernel.py, which refuses it as the kernel would, and where the
stand-in Falco then opens it) and update a host root's proc/modules and
sys/module/falco/version as the kernel would (taking the version from the artifact's
store path, where the real insmod would read it from the module). The host root carries
this machine's real kernel release and os-release, so the stand-in Falco names the same
driver. Falco is the stand-in image of 0.32 (tests/support/standin.py).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.model.artifacts import DriverKind
from tests.support.falcohost import Host, apply

pytestmark = pytest.mark.docker
NAME = f"falco-kmod-{uuid.uuid4().hex[:8]}"  # the engine is shared with other runs

INSMOD = """#!/bin/bash
echo "insmod $1" >> "$HOSTROOT/commands.log"
exec 9<>"/dev/tcp/127.0.0.1/$STANDIN_KERNEL_PORT"
{ echo "INSMOD $(stat -c %s "$1")"; cat "$1"; } >&9
read -r reply <&9
[ "$reply" = OK ] || { echo "insmod: ERROR: cannot insert $1: ${reply#ERR }" >&2; exit 1; }
version="$(basename "$(dirname "$(dirname "$1")")")"
echo "falco 892928 0 - Live 0x0000000000000000" >> "$HOSTROOT/proc/modules"
mkdir -p "$HOSTROOT/sys/module/falco"
echo "$version" > "$HOSTROOT/sys/module/falco/version"
"""
RMMOD = """#!/bin/bash
echo "rmmod $1" >> "$HOSTROOT/commands.log"
exec 9<>"/dev/tcp/127.0.0.1/$STANDIN_KERNEL_PORT"
echo "RMMOD $1" >&9
read -r reply <&9
case "$reply" in
  OK|*"not currently loaded"*) ;;
  *) echo "rmmod: ERROR: ${reply#ERR }" >&2; exit 1 ;;
esac
grep -v "^$1 " "$HOSTROOT/proc/modules" > "$HOSTROOT/modules.new" || true
mv "$HOSTROOT/modules.new" "$HOSTROOT/proc/modules"
rm -rf "$HOSTROOT/sys/module/$1"
"""


def preloaded_host(make_host_root: Any, tmp: Path) -> tuple[Path, list[str]]:
    """A host root with this machine's kernel and os-release and a proc/modules, and the
    stand-in insmod and rmmod scripts that change it as the kernel would."""
    uname = os.uname()
    root = make_host_root(hostname="web-1", release=uname.release, version=uname.version,
                          os_release=Path("/etc/os-release").read_text(), arch=uname.machine)
    (root / "proc/modules").write_text("ext4 1028096 1 - Live 0x0\n")
    scripts = []
    for name, body in (("insmod", INSMOD), ("rmmod", RMMOD)):
        script = tmp / f"fake-{name}"
        script.write_text(body)
        script.chmod(0o755)
        scripts.append(str(script))
    return root, scripts


@pytest.fixture
def preloaded(host: Host, make_host_root: Any, tmp_path: Path, clean_containers: list[str],
              monkeypatch: pytest.MonkeyPatch, kernel: Any) -> tuple[Host, Path, list[str]]:
    clean_containers.append(NAME)
    root, scripts = preloaded_host(make_host_root, tmp_path)
    monkeypatch.setenv("HOSTROOT", str(root))
    monkeypatch.setenv("STANDIN_KERNEL_PORT", str(kernel.address[1]))
    host.host_root = root
    host.repo.commit({"web.yaml": host.yaml("0.32.2", "kmod-preloaded", name=NAME)})
    host.publish_driver("0.32.2", DriverKind.KMOD)
    return host, root, ["--insmod-command", scripts[0], "--rmmod-command", scripts[1]]


def changes(host: Host, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, str]]:
    cli.main(host.args("plan", "--json"))
    doc = json.loads(capsys.readouterr().out)
    return [(c["kind"], c["op"], c["reason"]) for c in doc["changes"]]


def test_module_inserted_before_falco_starts_without_its_loader(
    preloaded: tuple[Host, Path, list[str]], capsys: pytest.CaptureFixture[str],
    docker_client: Any,
) -> None:
    host, root, commands = preloaded
    assert changes(host, capsys) == [
        ("driver", "create", "kmod-preloaded: the kernel module is not loaded: insert it"),
        ("container", "create", "container does not exist"),
    ]
    code, out = apply(host, capsys, *commands)
    assert code == 0, out
    log = (root / "commands.log").read_text().splitlines()
    assert len(log) == 1 and log[0].startswith("insmod ") and log[0].endswith(".ko")
    falco = docker_client.containers.get(NAME)
    assert "SKIP_DRIVER_LOADER=1" in falco.attrs["Config"]["Env"]
    logs = falco.logs().decode()
    assert "no driver loader" in logs and "running with kmod 2.0.0+driver" in logs, logs
    assert changes(host, capsys) == []
    cli.main(host.args("plan"))
    assert "kernel module falco 2.0.0+driver is loaded" in capsys.readouterr().out


def test_other_module_version_is_swapped_with_falco_stopped_meanwhile(
    preloaded: tuple[Host, Path, list[str]], capsys: pytest.CaptureFixture[str],
    docker_client: Any, kernel: Any,
) -> None:
    host, root, commands = preloaded
    assert apply(host, capsys, *commands)[0] == 0
    (root / "sys/module/falco/version").write_text("1.0.0+driver\n")
    assert kernel.loaded()["falco"].holders  # the running Falco holds it open
    assert changes(host, capsys) == [(
        "driver", "replace", "kmod-preloaded: another version of the kernel module is loaded: "
        "falco 1.0.0+driver is loaded, want 2.0.0+driver")]
    code, out = apply(host, capsys, *commands)
    assert code == 0, out
    log = [line.split()[0] for line in (root / "commands.log").read_text().splitlines()]
    assert log == ["insmod", "rmmod", "insmod"]  # rmmod worked: Falco was stopped first
    assert docker_client.containers.get(NAME).status == "running"
    assert changes(host, capsys) == []


def test_failing_insmod_leaves_falco_unstarted_and_says_why(
    preloaded: tuple[Host, Path, list[str]], capsys: pytest.CaptureFixture[str],
    docker_client: Any,
) -> None:
    host, _root, _commands = preloaded
    code, out = apply(host, capsys, "--insmod-command", "false")
    assert code == 1
    assert "false" in out and "exited 1" in out
    # Falco with SKIP_DRIVER_LOADER and no module would not work: it is not started.
    assert "· create " in out and "is not ready" in out
    assert not docker_client.containers.list(all=True, filters={"name": NAME})
