"""Benchmark: `reconciler plan` on a large fleet vs. PyYAML's C loader parsing the same files.

Issue #2's figure: on 2,000 Host documents and 20,000 DriverBuilds in 200 files,
`reconciler plan` must take at most 1.3x the time CSafeLoader needs just to parse them,
with peak memory under 300 MB. Both sides run as fresh processes, interleaved, in one run:

  baseline  python -c "parse every file with yaml.load_all(Loader=CSafeLoader)"
  plan      reconciler plan --repo <generated repo> --json   (git read, parse, validate,
            facts, desired, store and Docker observation, diff, JSON output)

Usage: python bench/plan_speed.py [--rounds 5] [--repo DIR]
Needs a Docker engine at DOCKER_HOST (plan observes containers) and bench/gen_manifests.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_manifests  # noqa: E402 - after the sys.path set-up above

BASELINE = """
import sys, yaml
from pathlib import Path
root = Path(sys.argv[1])
n = 0
for path in sorted(root.rglob('*.y*ml')):
    if any(p.startswith('.') for p in path.relative_to(root).parts):
        continue
    n += sum(1 for _ in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
print(n)
"""


def timed_wait4(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 2):
            sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read().decode()


INPROCESS = """
import sys, time, yaml
from reconciler import cli
cli.process_policy(one_shot=True)  # what `reconciler plan` runs with
from pathlib import Path
root, host_root, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
from reconciler import runtime, settings
from reconciler.plan import render
conf = settings.Settings(repo=str(root), host_root=host_root, store=work / "store",
                         state_dir=work / "state")
start = time.process_time()
for path in sorted(root.rglob('*.y*ml')):
    list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
parse = time.process_time() - start
start = time.process_time()
with runtime.open_runtime(conf) as rt:
    render.as_json(rt.planner().plan().plan)
plan = time.process_time() - start
print(parse, plan)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repo", type=Path, help="reuse a generated repository")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plan-bench-"))
    repo = args.repo or work / "fleet"
    if not args.repo:
        subprocess.run([sys.executable, str(HERE / "gen_manifests.py"), str(repo)], check=True)
    host_root = gen_manifests.bench_host_root(work)

    # An installed package runs from bytecode: pip compiles it at install time. An
    # editable checkout under PYTHONDONTWRITEBYTECODE=1 (as on these machines) would
    # instead compile its ~25 modules from source on every run (~60 ms), a cost no
    # installed `reconciler` has. Compile them once, as pip would.
    spec = importlib.util.find_spec("reconciler")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the reconciler package is not installed in this Python")
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    *spec.submodule_search_locations], check=True)

    env = dict(os.environ)
    env.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")
    reconciler = str(Path(sys.executable).with_name("reconciler"))
    plan_cmd = [reconciler, "plan", "--repo", str(repo), "--host-root", str(host_root),
                "--store", str(work / "store"), "--state-dir", str(work / "state"), "--json"]
    base_cmd = [sys.executable, "-c", BASELINE, str(repo)]

    files = sum(1 for _ in repo.rglob("*.y*ml"))
    docs = timed_wait4(base_cmd, env)[2].strip()
    print(f"repository: {repo} ({files} files, {docs} documents)")
    base_t, plan_t, peaks = [], [], []
    changes = 0
    for _ in range(args.rounds):
        wall, _, _ = timed_wait4(base_cmd, env)
        base_t.append(wall)
        wall, peak, out = timed_wait4(plan_cmd, env)
        plan_t.append(wall)
        peaks.append(peak)
        changes = out.count('"op":')
    b, p = statistics.median(base_t), statistics.median(plan_t)
    # This VM's speed drifts from minute to minute; each round's own ratio (its two runs
    # back to back) is steadier than a ratio of medians taken far apart.
    per_round = statistics.median(q / a for a, q in zip(base_t, plan_t, strict=True))
    print(f"planned changes: {changes}")
    print(f"CSafeLoader parse only : {b:7.3f} s  (median of {args.rounds}, fresh process)")
    print(f"reconciler plan        : {p:7.3f} s  (median of {args.rounds}, fresh process)")
    print(f"ratio plan/parse       : {p / b:7.2f}x  (target <= 1.30x)")
    print(f"median ratio per round : {per_round:7.2f}x  "
          f"(range {min(q / a for a, q in zip(base_t, plan_t, strict=True)):.2f}"
          f"-{max(q / a for a, q in zip(base_t, plan_t, strict=True)):.2f})")
    print(f"plan peak RSS          : {max(peaks):7.1f} MB (target < 300 MB)")
    # The same work inside one warm process (CPU seconds): what the pipeline costs
    # without the interpreter's start-up and imports, which CSafeLoader barely has.
    inner = [timed_wait4([sys.executable, "-c", INPROCESS, str(repo), str(host_root),
                          str(work)], env)[2].split() for _ in range(3)]
    parse_cpu = statistics.median(float(p) for p, _ in inner)
    plan_cpu = statistics.median(float(q) for _, q in inner)
    print(f"in one process (CPU)   : parse {parse_cpu:.3f} s, plan {plan_cpu:.3f} s, "
          f"ratio {plan_cpu / parse_cpu:.2f}x")


if __name__ == "__main__":
    main()
