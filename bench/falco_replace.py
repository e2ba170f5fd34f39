"""Benchmark: replacing Falco when only its env changed, vs. the bare Docker SDK calls.

Issue #5's figure: at most 1.3x the time of the bare SDK calls that do the same
(remove, create, start), median of 20. Both run in this process against the same engine,
alternating, on the stand-in Falco image (tests/support: Falco's own image cannot be
pulled here):

  bare     containers.remove(force) + containers.create(same spec, new env) + start
  ours     FalcoDeployer.replace for the planned change: image check, HEAD on the driver
           URL, rename aside, stop, create, start, settle check (settle period 0), remove
  pass     the same plus planning it first (git read, manifests, facts, store and
           Docker observation, diff), i.e. what one `apply` pass does

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

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler import runtime, settings  # noqa: E402
from reconciler.edges import store  # noqa: E402
from reconciler.edges.docker.client import Docker  # noqa: E402
from reconciler.edges.store import Store  # noqa: E402
from reconciler.httpd.server import DriverServer  # noqa: E402
from reconciler.reconcile.plan import Op  # noqa: E402
from tests.support import standin  # noqa: E402

NAME = "falco-bench-replace"
BARE = "falco-bench-bare"


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def manifest(n: int) -> str:
    return ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
            f"  falco:\n    version: 0.32.2\n    containerName: {NAME}\n"
            f"    image: {standin.REPOSITORY}\n    env: {{ROUND: \"{n}\"}}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")
    client = docker.from_env()  # the SDK itself, for the bare baseline
    image = standin.ensure(client, os.environ.get("RECONCILER_TEST_BASE_IMAGE",
                                                  "falco-reconciler/bookworm:base"), "0.32.2")
    work = Path(tempfile.mkdtemp(prefix="replace-bench-"))
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    drivers = store.Store(work / "store")
    (work / "store").mkdir()
    for leftover in client.containers.list(all=True):
        if leftover.name.startswith((NAME, BARE)):
            leftover.remove(force=True)

    with DriverServer(Store(work / "store"), ("127.0.0.1", 0)) as server:
        conf = settings.Settings(repo=str(repo), host_root=Path("/"), hostname="web-1",
                                 store=work / "store", state_dir=work / "state",
                                 listen=f"127.0.0.1:{server.address[1]}", privileged=False,
                                 settle=0)
        rt = runtime.Runtime(conf, Docker(client), runtime.Shared.for_settings(conf))
        (repo / "web.yaml").write_text(manifest(0))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "0")
        planned = rt.planner().plan()
        key = planned.desired.container.artifact if planned.desired.container else None
        assert key is not None
        blob = work / "blob"
        blob.write_bytes(b"\x7fELF stand-in driver")
        drivers.publish(key, blob)
        deployer = rt.deployer()
        rt.executor().run(rt.planner().plan().plan, planned.desired)

        spec = rt.planner().plan().desired.container
        assert spec is not None
        bare = client.containers.run(image, name=BARE, network_mode="host", detach=True,
                                     environment=list(f"{k}={v}" for k, v in spec.spec.env))
        ours_t, pass_t, bare_t = [], [], []
        for n in range(1, args.rounds + 1):
            (repo / "web.yaml").write_text(manifest(n))
            git(repo, "commit", "-qam", str(n))
            start = time.perf_counter()
            planned = rt.planner().plan()
            planned_at = time.perf_counter()
            (change,) = planned.plan.changes
            assert change.op is Op.REPLACE
            deployer.apply(change, planned.desired)
            done = time.perf_counter()
            ours_t.append(done - planned_at)
            pass_t.append(done - start)

            want = planned.desired.container
            assert want is not None
            volumes = {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                       for m in want.spec.mounts}
            start = time.perf_counter()
            bare.remove(force=True)
            bare = client.containers.create(
                image, name=BARE, environment=[f"{k}={v}" for k, v in want.spec.env],
                volumes=volumes, network_mode="host", restart_policy={"Name": "always"},
                labels={"bench": str(n)})
            bare.start()
            bare_t.append(time.perf_counter() - start)
        bare.remove(force=True)
        client.containers.get(NAME).remove(force=True)

    b, o, p = (statistics.median(x) for x in (bare_t, ours_t, pass_t))
    print(f"rounds: {args.rounds} env-only changes")
    print(f"bare SDK remove+create+start : {b * 1000:7.1f} ms (median)")
    print(f"our replace (planned change) : {o * 1000:7.1f} ms (median)  ratio {o / b:5.2f}x"
          "  (target <= 1.30x)")
    print(f"plan + replace (one pass)    : {p * 1000:7.1f} ms (median)  ratio {p / b:5.2f}x")


if __name__ == "__main__":
    main()
