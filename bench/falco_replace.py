"""Benchmark: replacing Falco when only its env changed, vs. the bare Docker SDK calls.

Two figures, median of the rounds, both sides in this process against the same engine,
alternating, on the stand-in Falco images of tests/support (Falco's own images cannot be
pulled here; the stand-ins behave like the real ones of each generation, over a stand-in
kernel):

  Falco 0.32.2 (the image loads its own driver), target <= 1.3x:
    bare  containers.remove(force) + containers.create(same spec, new env) + start, then
          GET /healthz until Falco's web server answers
    ours  the planned replace: image check, HEAD on the driver URL, stop, set aside,
          create, start, readiness (/healthz, settle 0), remove the old one
  Falco 0.40.0 kmod (the driver-loader image runs first), target <= 1.3x:
    bare  the loader container run to completion (create, start, wait, remove), then
          remove + create + start Falco, then GET /healthz until it answers
    ours  the planned loader run (stale file cleared, HEAD check, run, wait) and replace

Both Falcos run on the host network, side by side: the bare one's web server is moved to
port 8766 (``-o webserver.listen_port``), so each side waits for its own.

Usage: python bench/falco_replace.py [--rounds 20]
Needs a Docker engine at DOCKER_HOST and the local base image (.ci/setup makes both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler import runtime, settings  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.docker.client import Docker  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.http import client  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.store import local as store  # noqa: E402 - after the sys.path set-up above
from reconciler.errors import HttpError  # noqa: E402 - after the sys.path set-up above
from reconciler.httpd.server import DriverServer  # noqa: E402 - after the sys.path set-up above
from reconciler.model.artifacts import DriverKind  # noqa: E402 - after the sys.path set-up above
from reconciler.plan.diff import Reason  # noqa: E402 - after the sys.path set-up above
from tests.support import falcohost  # noqa: E402 - after the sys.path set-up above
from tests.support.standin import Standins  # noqa: E402 - after the sys.path set-up above
from tests.support.standin_kernel import StandinKernel  # noqa: E402 - after the sys.path set-up above

NAME = "falco-bench-replace"
BARE = "falco-bench-bare"


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def manifest(version: str, image: str, loader: str, n: int) -> str:
    return ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
            f"  falco:\n    version: {version}\n    containerName: {NAME}\n"
            f"    image: {image}\n    driverLoaderImage: {loader}\n"
            f"    env: {{ROUND: \"{n}\"}}\n")


BARE_WEB_PORT = 8766


def _wait_healthz(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get_status(f"http://127.0.0.1:{port}/healthz", timeout=1) == 200:
                return
        except HttpError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the bare Falco never answered /healthz on {port}")


def bare_round(client: Any, image: str, env: list[str], volumes: dict[str, Any],
               loader: Any | None) -> float:
    """The same engine work done with the SDK alone."""
    start = time.perf_counter()
    if loader is not None:
        run = client.containers.create(loader["image"], loader["args"], name=f"{BARE}-loader",
                                       environment=loader["env"], volumes=loader["volumes"],
                                       network_mode="host")
        run.start()
        if run.wait(timeout=120)["StatusCode"] != 0:
            raise SystemExit("the bare loader run failed:\n" + run.logs().decode())
        run.remove(force=True)
    for old in client.containers.list(all=True, filters={"name": f"^{BARE}$"}):
        old.remove(force=True)
    made = client.containers.create(
        image, ["/usr/bin/falco", "-o", f"webserver.listen_port={BARE_WEB_PORT}"], name=BARE,
        environment=env, volumes=volumes, network_mode="host",
        restart_policy={"Name": "always"})
    made.start()
    _wait_healthz(BARE_WEB_PORT)
    return time.perf_counter() - start


def measure(version: str, rounds: int, client: Any, standins: Standins, work: Path) -> None:
    repo = work / f"repo-{version}"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    image = standins.falco(version).rsplit(":", 1)[0]
    generation_040 = version >= "0.40"
    loader_image = standins.loader(version).rsplit(":", 1)[0] if generation_040 else image
    drivers = store.Store(work / f"store-{version}")
    host_root = work / f"host-{version}"
    (host_root / "root/.falco").mkdir(parents=True)
    for link in ("etc", "proc"):
        (host_root / link).symlink_to(f"/{link}")
    falcohost.publish_standin_driver(drivers, Path("/"), version, DriverKind.KMOD)
    with DriverServer(drivers, ("127.0.0.1", 0)) as server:
        conf = settings.Settings(repo=str(repo), host_root=host_root, hostname="web-1",
                                 store=drivers.root, state_dir=work / f"state-{version}",
                                 listen=f"127.0.0.1:{server.address[1]}", privileged=False,
                                 settle=0)
        rt = runtime.Runtime(conf, Docker(client), runtime.Shared.for_settings(conf))
        (repo / "web.yaml").write_text(manifest(version, image, loader_image, 0))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "0")
        first = rt.planner().plan()
        rt.executor().run(first.plan, first.desired)
        ours_t, bare_t = [], []
        for n in range(1, rounds + 1):
            (repo / "web.yaml").write_text(manifest(version, image, loader_image, n))
            git(repo, "commit", "-qam", str(n))
            planned = rt.planner().plan()
            deployer = rt.deployer()
            start = time.perf_counter()
            for change in planned.plan.changes:
                deployer.apply(change, planned.desired)
            ours_t.append(time.perf_counter() - start)
            want = planned.desired.container
            assert want is not None
            spec = want.spec
            loader = None
            if spec.loader is not None:
                assert any(c.reason is Reason.LOADER_RUN for c in planned.plan.changes)
                loader = {"image": spec.loader.image, "args": list(spec.loader.args),
                          "env": [f"{k}={v}" for k, v in spec.loader.env],
                          "volumes": {m.source: {"bind": m.target,
                                                 "mode": "ro" if m.read_only else "rw"}
                                      for m in spec.loader.mounts}}
            volumes = {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                       for m in spec.mounts}
            bare_t.append(bare_round(client, spec.image, [f"{k}={v}" for k, v in spec.env],
                                     volumes, loader))
        for name in (NAME, BARE):
            for left in client.containers.list(all=True, filters={"name": f"^{name}"}):
                left.remove(force=True)
    b, o = statistics.median(bare_t), statistics.median(ours_t)
    what = "loader run + replace" if generation_040 else "replace"
    print(f"Falco {version}: {rounds} env-only changes ({what})")
    print(f"  bare SDK calls          : {b * 1000:7.1f} ms (median)")
    print(f"  our planned changes     : {o * 1000:7.1f} ms (median)  ratio {o / b:5.2f}x"
          "  (target <= 1.30x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")
    client = docker.from_env()  # the SDK itself, for the bare baseline
    base = os.environ.get("RECONCILER_TEST_BASE_IMAGE", "falco-reconciler/bookworm:base")
    work = Path(tempfile.mkdtemp(prefix="replace-bench-"))
    with StandinKernel() as kernel:
        standins = Standins(client, base, kernel)
        try:
            for version in ("0.32.2", "0.40.0"):
                measure(version, args.rounds, client, standins, work)
        finally:
            standins.close()


if __name__ == "__main__":
    main()
