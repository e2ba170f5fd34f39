"""Benchmark: a daemon pass on an unchanged revision, and after a one-file push, vs a full plan.

Issue #10's figure: the daemon must not re-parse what did not change. On the plan
benchmark's fleet (2,000 Hosts and 20,000 DriverBuilds in 200 files, bench/gen_manifests.py)
one warm process, as the daemon is, plans side by side in each round:

  full      a cold planner (nothing cached): git read, parse, validate, facts, desired,
            store and Docker observation, diff
  unchanged the daemon's planner again at the same revision (target <= 0.2x full)
  one file  the daemon's planner after a commit that changes one of the 200 files
            (target <= 0.3x full)

Planning is the part of a pass that depends on the repository; applying a converged plan
changes nothing. Usage: python bench/daemon_pass.py [--rounds 5] [--repo DIR]
Needs a Docker engine at DOCKER_HOST (the planner observes containers).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")

import gen_manifests  # noqa: E402 - after the sys.path set-up above

from reconciler import cli, runtime, settings  # noqa: E402 - after the sys.path set-up above
from reconciler.edges.docker import client  # noqa: E402 - after the sys.path set-up above


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def timed(planning: runtime.Runtime) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    planned = planning.planner().plan()
    return time.perf_counter() - start, len(planned.plan.changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repo", type=Path, help="reuse a generated repository (it gets commits)")
    args = ap.parse_args()
    cli.process_policy(one_shot=False)  # what `reconciler run` runs with
    work = Path(tempfile.mkdtemp(prefix="pass-bench-"))
    repo = args.repo or work / "fleet"
    if not args.repo:
        subprocess.run([sys.executable, str(HERE / "gen_manifests.py"), str(repo)], check=True)
    conf = settings.Settings(repo=str(repo), host_root=gen_manifests.bench_host_root(work),
                             store=work / "store",
                             state_dir=work / "state")
    engine = client.connect()
    daemon = runtime.Runtime(conf, engine, runtime.Shared.for_settings(conf))
    files = sorted(p for p in repo.rglob("*.yaml") if ".git" not in p.parts)
    timed(daemon)  # the daemon's first pass: its caches fill
    full_t, same_t, push_t = [], [], []
    changes = 0
    for n in range(args.rounds):
        cold = runtime.Runtime(conf, engine, runtime.Shared.for_settings(conf))
        seconds, changes = timed(cold)
        full_t.append(seconds)
        same_t.append(timed(daemon)[0])
        touched = files[n % len(files)]
        touched.write_text(touched.read_text() + f"# push {n}\n")
        git(repo, "commit", "-qam", f"push {n}")
        push_t.append(timed(daemon)[0])
    engine.close()
    f, s, p = (statistics.median(t) for t in (full_t, same_t, push_t))
    print(f"repository: {repo} ({len(files)} files), planned changes: {changes}")
    print(f"full plan (cold)          : {f:7.3f} s  (median of {args.rounds})")
    print(f"pass, unchanged revision  : {s:7.3f} s  ratio {s / f:5.2f}x  (target <= 0.20x)")
    print(f"pass, one-file push       : {p:7.3f} s  ratio {p / f:5.2f}x  (target <= 0.30x)")


if __name__ == "__main__":
    main()
