"""Real builds in a real Docker engine, from Debian's falcosecurity-scap-dkms source and a
Debian bookworm header package the apt mirror offers today.

The builder image and the header/source caches are shared by the session (and by reruns),
so the first run pays for the toolchain and headers once; what each test checks is
behaviour, counted through docker events and our container labels, never timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import runner, steps, verify
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.store import local as store_mod
from reconciler.edges.store import verifier
from reconciler.errors import BuildError, BuildTimeout
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.container import BindMount
from tests.builder.helpers import DKMS_SOURCE, download_header_debs, request

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KMOD, EBPF = DriverKind.KMOD, DriverKind.EBPF


def _visible_files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


@pytest.mark.usefixtures("no_leftover_containers")
def test_builds_the_real_module_and_probe_from_the_debian_dkms_source(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
) -> None:
    """Module and probe for today's newest bookworm 6.1 cloud kernel: published with their
    checksums, the module named falco with a vermagic of that release (as modinfo shows),
    the probe an eBPF ELF object; progress went through every step in order."""
    config = make_config()
    events: list[runner.BuildEvent] = []
    (outcome,) = runner.build_all([request(kernel_release, "0.1.1-dkms", KMOD, EBPF)], config,
                                  Docker(docker_client),
                                  store_mod.Store(config.store), progress=events.append)

    assert outcome.error is None, str(outcome.error)
    assert [a.key.kind for a in outcome.artifacts] == [KMOD, EBPF]
    module, probe = (a.path for a in outcome.artifacts)
    assert module == config.store / f"0.1.1-dkms/x86_64/falco_debian_{kernel_release}_1.ko"
    assert probe == module.with_suffix(".o")
    for path in (module, probe):
        assert verifier.digest_in(path.with_name(path.name + ".sha256").read_bytes()) == (
            verifier.sha256_file(path))

    modinfo = jobs.Jobs(Docker(docker_client)).run(
        builder_image, f"modinfo -F vermagic /m/{module.name} && modinfo -F name /m/{module.name}",
        mounts=[BindMount(str(module.parent), "/m", read_only=True)],
    )
    assert modinfo.ok, modinfo.output
    vermagic, name = modinfo.output.strip().splitlines()
    assert vermagic.startswith(kernel_release + " ")
    assert name == "falco"
    assert verify.read_elf(probe.read_bytes()).machine == verify.EM_BPF

    started = [e.step for e in events if e.phase is runner.Phase.STARTED]
    # nothing to sign, and no load-test gate in this config
    assert started == [s for s in steps.Step if s not in (steps.Step.SIGN, steps.Step.LOAD_TEST)]
    assert outcome.log_path is not None and outcome.log_path.is_file()


def test_a_kernel_release_no_source_has_fails_fast_and_publishes_nothing(
    docker_client: Any, builder_image: str, make_config: Any, count_containers: Any,
) -> None:
    """An unknown release stops at the kernel-headers step, before any compile container
    (the source may have been fetched meanwhile), with an error naming the release and the
    apt sources tried; the store stays empty."""
    release = "6.1.0-999-nosuch-cloud-amd64"
    config = make_config()
    with count_containers() as created:
        (outcome,) = runner.build_all([request(release, "0.1.1-dkms", KMOD, EBPF)], config,
                Docker(docker_client), store_mod.Store(config.store))

    error = outcome.error
    assert isinstance(error, BuildError)
    assert error.step == "kernel-headers"
    assert release in str(error)
    assert "http://deb.debian.org/debian" in str(error)
    assert error.log_path and Path(error.log_path).is_file()
    assert f"full log: {error.log_path}" in str(error)
    assert "kernel-headers" in created.steps()
    assert "compile" not in created.steps()
    assert _visible_files(config.store) == []


def test_another_architecture_fails_at_once_with_the_reason(
    docker_client: Any, make_config: Any, count_containers: Any,
) -> None:
    """The builder compiles natively: an arm64 artifact on an x86_64 engine fails before
    any container or download, saying where to build it; nothing is published."""
    other = "aarch64" if jobs.Jobs(Docker(docker_client)).architecture() == "x86_64" else "x86_64"
    config = make_config()
    wanted = runner.BuildRequest(KernelId("debian", "6.1.0-18-cloud-arm64", "1", other),
                                 "0.1.1-dkms", (KMOD,))
    with count_containers() as created:
        (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                      store_mod.Store(config.store))
    error = outcome.error
    assert isinstance(error, BuildError)
    assert error.step == "builder-image"
    assert f"cannot build {other} drivers" in str(error)
    assert created.steps() == []
    assert _visible_files(config.store) == []


def test_second_driver_version_for_a_seen_kernel_fetches_no_headers(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    count_containers: Any,
) -> None:
    """After one driver version was built for a kernel, another version for the same
    kernel starts no header container: only its source and its compile."""
    config = make_config()
    (first,) = runner.build_all([request(kernel_release, "1.0.0-a")], config, Docker(docker_client),
                                store_mod.Store(config.store))
    assert first.error is None, str(first.error)
    with count_containers() as created:
        (second,) = runner.build_all([request(kernel_release, "1.0.0-b")], config,
                Docker(docker_client), store_mod.Store(config.store))
    assert second.error is None, str(second.error)
    assert "kernel-headers" not in created.steps()
    assert "compile" in created.steps()


def test_artifacts_already_in_the_store_start_no_container(
    docker_client: Any, make_config: Any, count_containers: Any,
) -> None:
    """A request whose artifacts are present and verify is answered from the store."""
    config = make_config()
    req = request("6.1.0-1-cloud-amd64", "2.0.0+driver", KMOD, EBPF)
    store = store_mod.Store(config.store)
    for kind in (KMOD, EBPF):
        source = config.state_dir / f"x{kind.suffix}"
        source.write_bytes(b"already built " + kind.encode())
        store.publish(ArtifactKey.for_kernel(req.kernel, req.driver_version, kind), source)
    with count_containers() as created:
        (outcome,) = runner.build_all([req], config, Docker(docker_client),
                                      store_mod.Store(config.store))
    assert outcome.ok and not outcome.built
    assert len(outcome.artifacts) == 2
    assert created.containers == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_compile_error_names_the_step_shows_the_compiler_and_publishes_nothing(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    tmp_path: Path,
) -> None:
    """A DKMS folder that does not compile: BuildError at 'compile' whose tail holds the
    compiler's message, the full log kept, nothing in the store."""
    tree = tmp_path / "broken-driver"
    tree.mkdir()
    (tree / "Makefile").write_text(
        "scap-y += main.o\nobj-m += scap.o\n"
        "all:\n\t$(MAKE) -C $(KERNELDIR) M=$(PWD) modules\n"
    )
    (tree / "driver_config.h").write_text('#define DRIVER_NAME "scap"\n')
    (tree / "main.c").write_text('#include "driver_config.h"\n#error this driver is broken\n')
    config = make_config(source=str(tree))
    (outcome,) = runner.build_all([request(kernel_release, "0.0.1-broken")], config,
            Docker(docker_client), store_mod.Store(config.store))
    error = outcome.error
    assert isinstance(error, BuildError)
    assert error.step == "compile"
    assert "this driver is broken" in error.tail
    assert len(error.tail.splitlines()) <= steps.TAIL_LINES
    assert "this driver is broken" in Path(error.log_path or "").read_text()
    assert _visible_files(config.store) == []
    # the Makefile was renamed to build falco.ko, the source folder itself left untouched
    assert "obj-m += scap.o" in (tree / "Makefile").read_text()


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_build_past_its_timeout_is_stopped_and_reported(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
) -> None:
    """A timeout shorter than the compile: BuildTimeout, container gone, nothing published."""
    warm = make_config()
    runner.build_all([request(kernel_release, "0.1.1-dkms-warm")], warm, Docker(docker_client),
                     store_mod.Store(warm.store))
    config = make_config(timeout=3.0, store=warm.store.parent / "store-timeout")
    (outcome,) = runner.build_all([request(kernel_release, "0.1.1-dkms-t", KMOD, EBPF)],
                                  config, Docker(docker_client), store_mod.Store(config.store))
    assert isinstance(outcome.error, BuildTimeout)
    assert "timed out" in str(outcome.error) or "timeout" in str(outcome.error)
    assert _visible_files(config.store) == []


def test_leftover_containers_of_a_dead_owner_are_removed_and_live_ones_kept(
    docker_client: Any, base_image: str,
) -> None:
    """What a kill -9 left (owner pid gone) is removed; a live owner's container is not."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = jobs.owner_label().rpartition(":")[0]
    made = []
    for owner in (f"{host}:{dead.pid}", f"{host}:{os.getpid()}"):
        made.append(docker_client.containers.create(
            base_image, ["sleep", "60"], network_mode="none",
            labels={jobs.LABEL_ROLE: jobs.ROLE_BUILDER, jobs.LABEL_OWNER: owner}))
    try:
        assert jobs.Jobs(Docker(docker_client)).remove_leftovers() == 1
        left = {c.id for c in docker_client.containers.list(
            all=True, filters={"label": f"{jobs.LABEL_ROLE}={jobs.ROLE_BUILDER}"})}
        assert made[0].id not in left
        assert made[1].id in left
    finally:
        for item in made:
            with contextlib.suppress(Exception):  # already removed is the point
                item.remove(force=True)


def _start_cli_build(config: runner.BuildConfig, release: str, version: str) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "--log-format", "json", "build",
         "--target", "debian", "--driverversion", version, "--kernelrelease", release,
         "--output-probe", str(config.state_dir / "out.o"),
         "--store", str(config.store), "--state-dir", str(config.state_dir),
         "--source", DKMS_SOURCE, "--base-image", config.base_image],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")},
    )


def _wait_for_compile(process: Any) -> None:
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        # Off a terminal the build's progress is its JSON log events, one per step change.
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if (event.get("event"), event.get("step"), event.get("phase")) == (
                    "driver.build.step", "compile", "started"):
                return
        seen.append(line)
    process.communicate()
    pytest.fail(f"the build ended ({process.returncode}) before compiling: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_build_leaves_no_artifact_container_or_temp_folder(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    sig: signal.Signals,
) -> None:
    """SIGTERM or Ctrl-C during the compile: the command exits, its container is removed,
    its private folder is gone, and the store shows no artifact."""
    config = make_config()
    process = _start_cli_build(config, kernel_release, "0.1.1-dkms-int")
    _wait_for_compile(process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0, err
    owner = f"{jobs.owner_label().rpartition(':')[0]}:{process.pid}"
    assert docker_client.containers.list(
        all=True, filters={"label": f"{jobs.LABEL_OWNER}={owner}"}) == []
    assert list((config.state_dir / "tmp").iterdir()) == []
    assert _visible_files(config.store) == []


def test_kill_9_leaves_no_visible_artifact_and_the_next_start_cleans_up(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    count_containers: Any,
) -> None:
    """kill -9 during the compile: nothing visible in the store; the orphaned container and
    private folder are removed by the next build, which then succeeds."""
    config = make_config()
    process = _start_cli_build(config, kernel_release, "0.1.1-dkms-kill")
    _wait_for_compile(process)
    time.sleep(1)  # let the compile container start; any moment of the compile will do
    process.kill()
    process.communicate()
    owner = f"{jobs.owner_label().rpartition(':')[0]}:{process.pid}"
    orphans = docker_client.containers.list(
        all=True, filters={"label": f"{jobs.LABEL_OWNER}={owner}"})
    assert _visible_files(config.store) == []
    assert list((config.state_dir / "tmp").iterdir()) != []  # its private folder

    (outcome,) = runner.build_all(
        [request(kernel_release, "0.1.1-dkms-kill", EBPF)], config, Docker(docker_client),
                                  store_mod.Store(config.store))
    assert outcome.error is None, str(outcome.error)
    for orphan in orphans:
        with pytest.raises(Exception, match=r"No such container|404"):
            docker_client.containers.get(orphan.id)
    assert list((config.state_dir / "tmp").iterdir()) == []
    assert _visible_files(config.store) == [
        f"0.1.1-dkms-kill/x86_64/falco_debian_{kernel_release}_1.o",
        f"0.1.1-dkms-kill/x86_64/falco_debian_{kernel_release}_1.o.sha256",
    ]


@pytest.mark.usefixtures("no_leftover_containers")
def test_kernel_urls_give_the_headers_for_any_target(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    tmp_path: Path,
) -> None:
    """Header packages named by URL (here file:// URLs of Debian's .debs, under a target
    apt knows nothing about) are fetched, unpacked with dpkg-deb and compiled against."""
    debs = download_header_debs(jobs.Jobs(Docker(docker_client)), builder_image,
                                kernel_release, tmp_path / "debs")
    urls = tuple(p.as_uri() for p in debs)
    assert len(urls) >= 2
    req = runner.BuildRequest(
        KernelId("vanilla", kernel_release, "1", "x86_64"), "0.1.1-urls", (KMOD,),
        urls)
    config = make_config(state_dir=tmp_path / "own-state")  # a cold header cache
    (outcome,) = runner.build_all([req], config, Docker(docker_client),
                                  store_mod.Store(config.store))
    assert outcome.error is None, str(outcome.error)
    vermagic = verify.check_module(outcome.artifacts[0].path.read_bytes(), kernel_release,
                                   "x86_64", "falco")
    assert vermagic.startswith(kernel_release)
    cached = config.state_dir / "cache/headers/x86_64/vanilla" / kernel_release / "headers.json"
    assert all(url in cached.read_text() for url in urls)
