"""Each generation of Falco's image, end to end: the declared driver, from our server.

Real git, store, driver server and engine; `reconciler apply` as a user runs it. What
stands in for what, because it cannot exist on these machines:

- Falco's images, per version (tests/support/standin.py and the scripts it installs,
  each modelling its upstream counterpart): up to 0.36 the image's entrypoint and bash
  ``falco-driver-loader``; 0.37-0.39 its entrypoint parsing FALCO_DRIVER_LOADER_OPTIONS
  and falcoctl's ``driver config``/``driver install`` (flag > env > config for the type,
  engine.kind written to falco.yaml or config.d); 0.40+ a Falco image with no entrypoint
  and a separate falco-driver-loader image. Falco itself picks its engine from -o >
  config.d > falco.yaml (0.37+) and refuses a driver whose API or schema version its
  libscap does not accept.
- The kernel's module state: the stand-in kernel (tests/support/standin_kernel.py), a
  loopback service that insmod, rmmod and lsmod in the images talk to; it refuses a
  module not built for the running release and one that is in use, and Falco opens the
  module there. Both containers of 0.40+ see the same one, as they see one kernel.
- The driver files: stand-ins carrying the strings the stand-ins check (vermagic,
  kernel_version, api_version, schema_version), published where the build would put
  them; real builds are tested in tests/builder.
- --privileged (this engine cannot grant every capability).

The host's facts are this machine's own (kernel, os-release), in a host root of the
test's, so that /root/.falco, which the 0.40+ loader shares with Falco, is the test's.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.artifacts import ArtifactKey, DriverKind
from tests.commands.test_apply.test_kmod_preloaded import INSMOD, RMMOD
from tests.support import standin
from tests.support.falcohost import NAME, Host, apply, plan

pytestmark = pytest.mark.docker
LOADER = f"{NAME}-driver-loader"
KMOD, EBPF = DriverKind.KMOD, DriverKind.EBPF


def has_loader_image(version: str) -> bool:
    return tuple(int(n) for n in version.split(".")[:2]) >= (0, 40)


def falco_logs(client: Any) -> str:
    return str(client.containers.get(NAME).logs().decode(errors="replace"))


def falco_home(host: Host) -> Path:
    return host.host_root / "root/.falco"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_module(kernel: Any, driver_version: str) -> None:
    loaded = kernel.loaded()
    assert "falco" in loaded, kernel.log[-10:]
    module = loaded["falco"]
    assert module.version == driver_version
    assert (module.api_version, module.schema_version) == standin.DRIVER_IDENTITY[driver_version]
    assert module.holders, "the running Falco holds the module open"


@pytest.mark.parametrize(("version", "driver", "kind", "opened"), [
    ("0.36.0", "kmod", KMOD, "running with kmod 6.0.1+driver"),
    ("0.37.1", "kmod", KMOD, "running with kmod 7.0.0+driver"),
    ("0.37.1", "ebpf", EBPF, "running with ebpf probe /root/.falco/falco-bpf.o, 7.0.0+driver"),
    ("0.38.0", "kmod", KMOD, "running with kmod 7.2.0+driver"),
    ("0.39.0", "modern_ebpf", None, "running with modern_ebpf"),
    ("0.40.0", "kmod", KMOD, "running with kmod 8.0.0+driver"),
    ("0.43.0", "ebpf", EBPF, "running with ebpf probe /root/.falco/falco-bpf.o, 9.1.0+driver"),
    ("0.44.0", "modern_ebpf", None, "running with modern_ebpf"),
])
def test_each_generation_runs_the_declared_driver_from_our_server(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
    version: str, driver: str, kind: DriverKind | None, opened: str,
) -> None:
    host = gen_host
    host.repo.commit({"web.yaml": host.yaml(version, driver)})
    key = host.publish_driver(version, kind) if kind is not None else None
    loader_step = [c for c in plan(host, capsys)["changes"] if c["name"] == LOADER]
    # Only 0.40+ with a driver to fetch runs the loader image, as its own step.
    assert bool(loader_step) is (has_loader_image(version) and kind is not None)
    code, out = apply(host, capsys)
    assert code == 0, out
    logs = falco_logs(docker_client)
    assert opened in logs, logs
    if key is not None and not has_loader_image(version):
        # Falco's own loader asked our server for exactly this file.
        assert f"{key.driver_version.replace('+', '%2B')}/x86_64/{key.filename}" in logs, logs
    if key is not None and has_loader_image(version):
        # The loader's download, shared with Falco, is the verified artifact we serve.
        fetched = falco_home(host) / key.driver_version / key.arch / key.filename
        assert sha256(fetched) == sha256(host.store.path_of(key))
    if kind is KMOD:
        assert_module(kernel, key.driver_version if key else "")
    else:
        assert "falco" not in kernel.loaded()
    if kind is None:
        assert not list(host.store.root.rglob("falco_*"))
    assert plan(host, capsys)["changes"] == []


def run_standin(client: Any, image: str, env: dict[str, str], name: str) -> tuple[int | None, str]:
    """Run a stand-in Falco image as the old contract did, outside the reconciler; its
    exit code (None: still running after a few seconds) and its log."""
    box = client.containers.run(
        image, name=name, environment={"HOST_ROOT": "/host", **env}, network_mode="host",
        volumes={"/etc": {"bind": "/host/etc", "mode": "ro"},
                 "/usr": {"bind": "/host/usr", "mode": "ro"}}, detach=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            box.reload()
            logs = box.logs().decode(errors="replace")
            if box.status == "exited" or "falco-standin: running with" in logs:
                break
            time.sleep(0.2)
        code = box.attrs["State"]["ExitCode"] if box.status == "exited" else None
        return code, box.logs().decode(errors="replace")
    finally:
        box.remove(force=True)


def test_the_old_contract_fails_in_the_stand_ins_as_in_the_real_images(
    gen_host: Host, docker_client: Any, kernel: Any, clean_containers: list[str],
) -> None:
    """What the reconciler used to set for 0.37+ (FALCOCTL_DRIVER_TYPE, no loader options)
    does not run the declared driver: 0.37 downloads the probe but opens kmod (its
    falco.yaml's engine), and 0.38's entrypoint passes its own --type flags, which beat
    the variable, so Falco opens modern_ebpf."""
    name = f"{NAME}-old-contract"
    clean_containers.append(name)
    repos = f"http://127.0.0.1:{gen_host.port}"
    probe = gen_host.publish_driver("0.37.1", EBPF)
    code, logs = run_standin(docker_client, gen_host.standins.falco("0.37.1"),
                             {"FALCOCTL_DRIVER_TYPE": "ebpf", "FALCOCTL_DRIVER_REPOS": repos},
                             name)
    assert probe.filename in logs and "type ebpf from env" in logs, logs
    assert code == 1 and "opening engine kmod" in logs and "module is not loaded" in logs, logs

    gen_host.publish_driver("0.38.0", KMOD)
    code, logs = run_standin(docker_client, gen_host.standins.falco("0.38.0"),
                             {"FALCOCTL_DRIVER_TYPE": "kmod", "FALCOCTL_DRIVER_REPOS": repos},
                             name)
    assert "type modern_ebpf from flag" in logs, logs  # driver config: its --type flags
    assert "type kmod from env" in logs, logs  # driver install: the variable, as it has none
    assert code is None and "running with modern_ebpf" in logs, logs


def recreate_with_env(client: Any, env: dict[str, str]) -> None:
    """Someone re-creates Falco by hand from its own settings, with other env."""
    old = client.containers.get(NAME)
    config, hostcfg = old.attrs["Config"], old.attrs["HostConfig"]
    current = dict(e.split("=", 1) for e in config["Env"])
    old.remove(force=True)
    client.containers.run(
        config["Image"], command=config["Cmd"], entrypoint=config["Entrypoint"],
        environment={**current, **env}, labels=config["Labels"], name=NAME,
        network_mode="host", volumes=hostcfg["Binds"],
        restart_policy={"Name": hostcfg["RestartPolicy"]["Name"]}, detach=True)


@pytest.mark.parametrize(("version", "tamper", "changed"), [
    ("0.37.1", {"FALCO_DRIVER_LOADER_OPTIONS": "ebpf"}, "FALCO_DRIVER_LOADER_OPTIONS"),
    ("0.40.0", {"HOST_ROOT": "/"}, "HOST_ROOT"),
])
def test_drift_is_mended_and_the_declared_module_stays_loaded(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
    version: str, tamper: dict[str, str], changed: str,
) -> None:
    host = gen_host
    host.repo.commit({"web.yaml": host.yaml(version, "kmod")})
    key = host.publish_driver(version, KMOD)
    assert apply(host, capsys)[0] == 0

    docker_client.containers.get(NAME).stop(timeout=2)
    assert "falco" in kernel.loaded() and not kernel.loaded()["falco"].holders
    reasons = [c["reason"] for c in plan(host, capsys)["changes"]]
    assert reasons[-1].startswith("container is not running"), reasons
    code, out = apply(host, capsys)
    assert code == 0, out
    assert_module(kernel, key.driver_version)

    docker_client.containers.get(NAME).remove(force=True)
    assert [c["op"] for c in plan(host, capsys)["changes"]][-1] == "create"
    code, out = apply(host, capsys)
    assert code == 0, out
    assert_module(kernel, key.driver_version)

    recreate_with_env(docker_client, tamper)
    reasons = [c["reason"] for c in plan(host, capsys)["changes"]]
    assert reasons[-1] == f"container spec changed: env {changed} differs", reasons
    code, out = apply(host, capsys)
    assert code == 0, out
    assert f"running with kmod {key.driver_version}" in falco_logs(docker_client)
    assert_module(kernel, key.driver_version)
    assert plan(host, capsys)["changes"] == []


def test_a_stale_driver_in_root_falco_does_not_win_over_ours(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """falcoctl reuses ~/.falco/<version>/<arch>/<file> without any check; on 0.40+ that
    folder is the host's. A stale build there (another schema) must not be loaded."""
    host = gen_host
    key = host.publish_driver("0.40.0", KMOD)
    stale = falco_home(host) / key.driver_version / key.arch / key.filename
    stale.parent.mkdir(parents=True)
    stale.write_bytes(standin.driver_file("kmod", key.driver_version, os.uname().release,
                                          ("8.0.3", "3.0.0")))
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod")})
    code, out = apply(host, capsys)
    assert code == 0, out
    assert sha256(stale) == sha256(host.store.path_of(key))
    assert_module(kernel, "8.0.0+driver")
    assert "running with kmod 8.0.0+driver (API 8.0.3, schema 3.5.0)" in falco_logs(docker_client)


def test_a_failing_loader_keeps_the_old_falco_and_reports_its_last_lines(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """A loader image pinned to another release (0.44's, which knows no ebpf) exits 1:
    Falco 0.43 on its probe is left running, and the loader's own words are reported."""
    host = gen_host
    host.publish_driver("0.43.0", EBPF)
    manifest = host.yaml("0.43.0", "ebpf")
    host.repo.commit({"web.yaml": manifest})
    assert apply(host, capsys)[0] == 0
    running = docker_client.containers.get(NAME)

    host.standins.loader("0.44.0")
    pinned = manifest.replace(f"driverLoaderImage: {host.standins.loader_repository}",
                              f"driverLoaderImage: {host.standins.loader('0.44.0')}")
    host.repo.commit({"web.yaml": pinned})
    code, out = apply(host, capsys)
    assert code == 1, out
    assert "exited with code 1; Falco left as is" in out, out
    assert "Unknown driver: ebpf" in out, out  # the loader's last lines
    still = docker_client.containers.get(NAME)
    assert (still.id, still.status) == (running.id, "running")
    assert not docker_client.containers.list(all=True, filters={"name": LOADER})


def test_a_driver_libscap_refuses_rolls_back_to_the_old_falco(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """Upgrading 0.37 to 0.38 with a driver whose schema is too old for 0.38's libscap:
    the new Falco exits, the old one is put back and loads its own driver again."""
    host = gen_host
    host.publish_driver("0.37.1", KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.37.1", "kmod")})
    assert apply(host, capsys)[0] == 0
    first = docker_client.containers.get(NAME).id

    host.publish_driver("0.38.0", KMOD, identity=standin.DRIVER_IDENTITY["7.0.0+driver"])
    host.repo.commit({"web.yaml": host.yaml("0.38.0", "kmod")})
    code, out = apply(host, capsys)
    assert code == 1, out
    assert "the previous container was put back" in out
    assert "api version 8.0.1 is not compatible with the required 8.0.3" in out, out
    back = docker_client.containers.get(NAME)
    assert (back.id, back.status) == (first, "running")
    # Restarted, its entrypoint swaps the refused module for its own again.
    deadline = time.monotonic() + 20
    while back.logs().decode().count("running with kmod 7.0.0+driver") < 2:
        assert time.monotonic() < deadline, back.logs().decode()
        time.sleep(0.2)
    assert_module(kernel, "7.0.0+driver")


def test_kmod_preloaded_on_0_40_opens_the_module_the_host_inserted(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No loader image runs: the module is inserted on the host (the stand-in insmod of
    test_apply/test_kmod_preloaded.py), and Falco 0.40 is told to open kmod."""
    host = gen_host
    (host.host_root / "proc/modules").write_text("ext4 1028096 1 - Live 0x0\n")
    commands = []
    for name, body in (("insmod", INSMOD), ("rmmod", RMMOD)):
        script = tmp_path / f"fake-{name}"
        script.write_text(body)
        script.chmod(0o755)
        commands.append(str(script))
    monkeypatch.setenv("HOSTROOT", str(host.host_root))
    monkeypatch.setenv("STANDIN_KERNEL_PORT", str(kernel.address[1]))
    key: ArtifactKey = host.publish_driver("0.40.0", KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod-preloaded")})
    assert LOADER not in [c["name"] for c in plan(host, capsys)["changes"]]
    code, out = apply(host, capsys, "--insmod-command", commands[0],
                      "--rmmod-command", commands[1])
    assert code == 0, out
    assert "running with kmod 8.0.0+driver" in falco_logs(docker_client)
    assert_module(kernel, key.driver_version)
    assert not (falco_home(host) / key.driver_version).exists()


def test_a_kmod_upgrade_on_0_40_swaps_the_module_the_running_falco_held(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """The loader runs while the old Falco still holds its module, so the kernel refuses
    to remove it (and falcoctl only warns); the new Falco must not be left with the old
    module, which its libscap refuses (8.0.0's schema 3.5.0 < 0.41's 3.6.1)."""
    host = gen_host
    host.publish_driver("0.40.0", KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod")})
    assert apply(host, capsys)[0] == 0
    assert_module(kernel, "8.0.0+driver")

    host.publish_driver("0.41.0", KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.41.0", "kmod")})
    code, out = apply(host, capsys)
    assert code == 0, out
    assert "running with kmod 8.1.0+driver" in falco_logs(docker_client)
    assert_module(kernel, "8.1.0+driver")
    assert plan(host, capsys)["changes"] == []


def test_an_artifact_gone_after_the_check_fails_the_loader_and_keeps_the_old_falco(
    gen_host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, kernel: Any,
) -> None:
    """The driver leaves the store between our HEAD check and the loader's GET (the
    moment its container is created): the loader exits 1, the running 0.40 Falco and the
    module it holds stay, and the loader's own last lines say why."""
    host = gen_host
    key = host.publish_driver("0.40.0", KMOD)
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod")})
    assert apply(host, capsys)[0] == 0
    running = docker_client.containers.get(NAME)

    events = docker_client.events(decode=True, filters={
        "type": "container", "event": "create", "container": LOADER})

    def remove_on_create() -> None:
        for _event in events:
            host.store.remove(key)
            return

    remover = threading.Thread(target=remove_on_create, daemon=True)
    remover.start()
    host.repo.commit({"web.yaml": host.yaml("0.40.0", "kmod", env={"FALCO_LOG_LEVEL": "debug"})})
    try:
        code, out = apply(host, capsys)
    finally:
        events.close()
    assert code == 1, out
    assert "exited with code 1; Falco left as is" in out, out
    assert "Non-200 response from url. code 404" in out, out  # the loader's last lines
    assert "is not ready" in out  # the replace waits for a loader run that succeeds
    still = docker_client.containers.get(NAME)
    assert (still.id, still.status) == (running.id, "running")
    assert_module(kernel, "8.0.0+driver")  # in use: its loader could not remove it
