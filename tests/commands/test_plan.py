"""`reconciler plan` end to end: real git repository, real store files, real Docker engine.

Falco's image cannot be pulled here, so the "Falco" containers in these tests are plain
Debian containers carrying the labels and env the reconciler would give Falco; the plan
only reads names, labels, env and state, which is what is being tested. This machine's
engine cannot start --privileged containers (CAP_SYS_RESOURCE is outside its bounding
set), so the tests plan with `--privileged false`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli, runtime, settings
from reconciler.edges.store import local as store
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey, DriverKind
from tests.conftest import GitRepo

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
# The shipped web Host runs Falco 0.40 (8.0.0+driver); its falcoctl names a Debian kernel
# by the package version in `uname -v` (5.10.113-1) with the cloud flavour kept.
SEED = ArtifactKey("8.0.0+driver", "x86_64", "debian", "5.10.113-1-cloud-amd64", "1",
                   DriverKind.KMOD)
NAME = "falco-plan-test"
LOADER = f"{NAME}-driver-loader"
# Falco's image cannot be pulled here: the base image, tagged under this name, stands in.
STANDIN = "falco-reconciler/falco-plan-standin"


@pytest.fixture
def fleet(git_repo: GitRepo) -> GitRepo:
    """The shipped example Hosts and DriverBuilds (not the driverkit grid, which every host
    builds), with the web Host's container renamed for isolation."""
    for part in ("hosts", "builds"):
        shutil.copytree(ROOT / "manifests" / part, git_repo.path / "manifests" / part)
    web = git_repo.path / "manifests/hosts/10-web.yaml"
    web.write_text(web.read_text().replace(
        "    driver: kmod\n",
        f"    driver: kmod\n    containerName: {NAME}\n    image: {STANDIN}\n"))
    git_repo.commit(message="fleet")
    return git_repo


def run_plan(capsys: pytest.CaptureFixture[str], fleet: GitRepo, host_root: Path, tmp: Path,
             *extra: str) -> tuple[int, dict[str, Any]]:
    code = cli.main([
        "plan", "--repo", str(fleet.path), "--path", "manifests", "--host-root", str(host_root),
        "--store", str(tmp / "store"), "--state-dir", str(tmp / "state"), "--json",
        "--privileged", "false", *extra,
    ])
    return code, json.loads(capsys.readouterr().out)


def start(client: Any, base_image: str, name: str, *, labels: dict[str, str] | None = None,
          env: tuple[tuple[str, str], ...] = (), running: bool = True) -> Any:
    client.images.get(base_image).tag(STANDIN, "0.40.0")
    made = client.containers.create(
        f"{STANDIN}:0.40.0", ["sleep", "infinity"], name=name, network_mode="none",
        labels=labels or {}, environment=[f"{k}={v}" for k, v in env], privileged=False,
    )
    if running:
        made.start()
    return made


def test_fresh_host_plan_and_nothing_changed(
    capsys: pytest.CaptureFixture[str], fleet: GitRepo, make_host_root: Any, tmp_path: Path,
    docker_client: Any, clean_containers: list[str],
) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    code, doc = run_plan(capsys, fleet, make_host_root(), tmp_path, "--detailed-exitcode")
    assert code == 2
    assert doc["host"] == "web-1"
    assert doc["revision"] == fleet.git("rev-parse", "HEAD")
    assert [(c["kind"], c["op"], c["name"]) for c in doc["changes"]] == [
        ("driver", "build", SEED.relpath),
        # Falco 0.40's driver-loader image runs first, as its own step.
        ("container", "create", LOADER), ("container", "create", NAME),
    ]
    # A plan touches nothing: no store, no container.
    assert not (tmp_path / "store").exists()
    assert {c.id for c in docker_client.containers.list(all=True)} == before


def test_labelled_running_container_and_built_artifacts_mean_no_changes(
    capsys: pytest.CaptureFixture[str], fleet: GitRepo, make_host_root: Any, tmp_path: Path,
    docker_client: Any, base_image: str, clean_containers: list[str],
) -> None:
    clean_containers.append(NAME)
    root = make_host_root()  # one host: its /root/.falco is part of the loader's spec
    drivers = store.Store(tmp_path / "store")
    blob = tmp_path / "module.ko"
    blob.write_bytes(b"\x7fELF not really a module")
    drivers.publish(SEED, blob)
    # Compute the spec the reconciler wants and run a container that carries it.
    code, doc = run_plan(capsys, fleet, root, tmp_path)
    assert [(c["op"], c["name"]) for c in doc["changes"]] == [("create", LOADER),
                                                              ("create", NAME)]
    # The same computation the CLI made, to learn the spec a matching container must carry.
    conf = settings.Settings(repo=str(fleet.path), path="manifests",
                             host_root=root, store=tmp_path / "store",
                             state_dir=tmp_path / "state", privileged=False)
    with runtime.open_runtime(conf) as rt:
        planned = rt.planner().plan()
    spec = planned.desired.container.spec if planned.desired.container else None
    assert spec is not None
    made = start(docker_client, base_image, NAME,
                 labels=spec.labels(revision="old", host="web"), env=spec.env)
    code, doc = run_plan(capsys, fleet, root, tmp_path, "--detailed-exitcode")
    assert (code, doc["changes"]) == (0, [])

    made.stop(timeout=1)
    _, doc = run_plan(capsys, fleet, root, tmp_path)
    assert [(c["op"], c["name"]) for c in doc["changes"]] == [("create", LOADER),
                                                              ("replace", NAME)]
    assert "not running: exited" in doc["changes"][1]["reason"]

    # Corrupt an artifact behind our back: it must be rebuilt.
    drivers.path_of(SEED).write_bytes(b"tampered")
    _, doc = run_plan(capsys, fleet, root, tmp_path)
    assert ("build", SEED.relpath) in [(c["op"], c["name"]) for c in doc["changes"]]
    assert "checksum" in doc["changes"][0]["reason"]


def test_foreign_container_with_the_name_is_shown_not_silently_replaced(
    capsys: pytest.CaptureFixture[str], fleet: GitRepo, make_host_root: Any, tmp_path: Path,
    docker_client: Any, base_image: str, clean_containers: list[str],
) -> None:
    clean_containers.append(NAME)
    start(docker_client, base_image, NAME)
    _, doc = run_plan(capsys, fleet, make_host_root(), tmp_path)
    change = next(c for c in doc["changes"] if c["name"] == NAME)
    assert (change["op"], change["name"]) == ("replace", NAME)
    assert "not created by falco-reconciler" in change["reason"]
    assert "--adopt" in change["reason"]
    _, adopted = run_plan(capsys, fleet, make_host_root(), tmp_path, "--adopt")
    assert "adopting it" in next(c for c in adopted["changes"] if c["name"] == NAME)["reason"]


def test_host_that_no_manifest_matches_gets_its_managed_container_removed(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
    docker_client: Any, base_image: str, clean_containers: list[str],
) -> None:
    git_repo.commit({"hosts.yaml": (
        "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: db}\n"
        "spec: {match: {hostnames: [db-*]}, falco: {version: 0.32.2}}\n")})
    clean_containers.append(NAME)
    start(docker_client, base_image, NAME, labels={container.LABEL_MANAGED: "true"})
    code = cli.main(["plan", "--repo", str(git_repo.path), "--host-root", str(make_host_root()),
                     "--store", str(tmp_path / "s"), "--state-dir", str(tmp_path / "st"),
                     "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(c["op"], c["name"]) for c in doc["changes"]] == [("remove", NAME)]
    assert doc["changes"][0]["reason"] == "no Host manifest matches this host"


def test_plan_without_a_docker_engine_fails_with_one_sentence(
    capsys: pytest.CaptureFixture[str], fleet: GitRepo, make_host_root: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    code = cli.main(["plan", "--repo", str(fleet.path), "--path", "manifests",
                     "--host-root", str(make_host_root()), "--store", str(tmp_path / "s"),
                     "--state-dir", str(tmp_path / "st")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("reconciler: no Docker engine answers at unix://")
    assert "Traceback" not in err


def test_bridge_network_falco_gets_the_gateway_address(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
    docker_client: Any,
) -> None:
    """On a bridge network Falco reaches the host at the network's gateway, so that is the
    DRIVERS_REPO, and a server bound to loopback is refused with the fix named. (Only the
    network's configuration is read; no traffic crosses it.)"""
    network = docker_client.networks.create("falco-reconciler-test-net", driver="bridge")
    try:
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        git_repo.commit({"hosts.yaml": (
            "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            "spec: {falco: {version: 0.32.2, network: falco-reconciler-test-net}}\n")})
        common = ["--repo", str(git_repo.path), "--host-root", str(make_host_root()),
                  "--store", str(tmp_path / "s"), "--state-dir", str(tmp_path / "st")]
        conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                                 store=tmp_path / "s", state_dir=tmp_path / "st",
                                 listen="0.0.0.0:8123")
        with runtime.open_runtime(conf) as rt:
            planned = rt.planner().plan()
        assert planned.desired.container is not None
        env = planned.desired.container.spec.env_dict
        assert env["DRIVERS_REPO"] == f"http://{gateway}:8123"
        assert planned.desired.container.spec.network == "falco-reconciler-test-net"

        assert cli.main(["plan", *common, "--listen", "127.0.0.1:8123"]) == 1
        err = capsys.readouterr().err
        assert f"reaches this host at {gateway}" in err
        assert "--listen 0.0.0.0:8123" in err
    finally:
        network.remove()


def test_another_host_is_planned_from_its_own_facts_without_this_hosts_retention(
    capsys: pytest.CaptureFixture[str], fleet: GitRepo, make_host_root: Any, tmp_path: Path,
    clean_containers: list[str],
) -> None:
    """A build host planning web-1: with web-1's `facts --json` the artifact is named for
    web-1's kernel, not the build host's; this machine's store is not called 'no longer
    wanted'; stderr says whose facts were used."""
    web = make_host_root(hostname="web-1", release="6.1.0-28-cloud-amd64",
                         version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)")
    assert cli.main(["facts", "--host-root", str(web), "--json"]) == 0
    facts_file = tmp_path / "web-1.json"
    facts_file.write_text(capsys.readouterr().out)
    builder = make_host_root(hostname="build-1")  # the default 5.10 kernel
    drivers = store.Store(tmp_path / "store")
    blob = tmp_path / "old.ko"
    blob.write_bytes(b"\x7fELF an old module nobody wants")
    drivers.publish(SEED, blob)  # the build host's own artifact, for ITS kernel
    argv = ["plan", "--repo", str(fleet.path), "--path", "manifests", "--host-root",
            str(builder), "--store", str(tmp_path / "store"), "--state-dir",
            str(tmp_path / "state"), "--privileged", "false", "--hostname", "web-1"]
    assert cli.main([*argv, "--facts", str(facts_file)]) == 0
    captured = capsys.readouterr()
    assert "8.0.0+driver/x86_64/falco_debian_6.1.119-1-cloud-amd64_1.ko" in captured.out
    assert SEED.relpath not in captured.out  # neither wanted nor "no longer wanted"
    assert f"note: planned web-1 with the facts in {facts_file}" in captured.err
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert SEED.relpath in captured.out  # this machine's kernel: the build host's own name
    assert "no longer wanted" not in captured.out
    assert "note: planned web-1 with THIS machine's facts (kernel 5.10.0-14-cloud-amd64" \
        in captured.err


# A plan in a process of its own, as `reconciler plan` runs: argv after the file the
# process writes its code and the modules it ended with to.
PLAN_IN_A_PROCESS = """
import json, sys
from reconciler import cli
code = cli.main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""
# What only building, signing, load-testing, fetching, applying or serving needs: a plan
# reads, observes and diffs, and importing these cost it about a tenth of a second and
# 12 MB (bench/plan_speed.py). The Docker SDK itself stays (plan observes the engine);
# our own job runner on it (builds and load tests) does not.
NOT_FOR_PLAN = ("cryptography", "reconciler.edges.host.crypto", "reconciler.edges.vm",
                "reconciler.loadtest.gate", "reconciler.loadtest.tester",
                "reconciler.loadtest.guest", "reconciler.builder", "reconciler.apply",
                "reconciler.httpd", "reconciler.edges.store.signedindex",
                "reconciler.edges.docker.jobs", "reconciler.daemon.passes")


def test_a_plan_imports_nothing_only_building_signing_or_serving_needs(
    fleet: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    """A real plan (git, host files, a stored driver, the engine) run to its end in a
    fresh process, so an import a plan reaches lazily counts too."""
    drivers = store.Store(tmp_path / "store")
    blob = tmp_path / "module.ko"
    blob.write_bytes(b"\x7fELF not really a module")
    drivers.publish(SEED, blob)
    seen = tmp_path / "seen.json"
    run = subprocess.run(
        [sys.executable, "-c", PLAN_IN_A_PROCESS, str(seen), "plan", "--repo", str(fleet.path),
         "--path", "manifests", "--host-root", str(make_host_root()), "--store",
         str(tmp_path / "store"), "--state-dir", str(tmp_path / "state"), "--json",
         "--privileged", "false", "--detailed-exitcode", "--out", str(tmp_path / "plan.json")],
        capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(seen.read_text())
    assert result["code"] == 2
    assert [c["name"] for c in json.loads(run.stdout)["changes"]] == [LOADER, NAME]
    modules = set(result["modules"])
    assert {"reconciler.plan.diff", "reconciler.edges.docker.client"} <= modules
    assert sorted(m for m in modules if m.startswith(NOT_FOR_PLAN)) == []
