"""Fetch vs build: a fleet host getting its driver from a build host, or building it.

One host root (Debian 12 running the newest cached real Debian cloud kernel, a Host for
Falco 0.40 kmod, ``kernels: running``), one artifact (driver 8.0.0+driver for that kernel,
named as 0.40's loader asks for it), each way into a fresh store, timed around the same
command, ``reconciler prebuild`` (a child process: plan, then build or fetch, verify,
publish), side by side in one run:

- build, warm caches: ``--build always`` with the header and source caches the build
  tests share (``$RECONCILER_TEST_BUILD_CACHE``): no download, a real compile;
- build, cold caches (unless ``--no-cold``): a fresh state dir, so headers from apt and
  the driver source are fetched first; the builder image is the engine's, already made;
- fetch: ``--build never`` with the warm build's store served by ``reconciler serve`` as a
  ``kind: reconciler`` upstream over HTTP on loopback: index.json, the download, the
  sha256 and driver checks, the publish. Repeated ``--fetches`` times (median), each into
  a fresh store.

Prints each time, what of the fetch's is the command itself (the same run with the driver
already in the store), and the ratios fetch/build (expected well under 0.1x). The cold
build's downloads go to whatever apt mirror the builder image names, so its time says as
much about that mirror as about us.

    python bench/fetch_vs_build.py [--fetches 5] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")

from bench._servers import free_port, wait_up  # noqa: E402 - after the sys.path set-up above
from tests.builder.helpers import CACHE_ROOT  # noqa: E402 - after the sys.path set-up above
from tests.support import falcohost, kernelpkg  # noqa: E402 - after the sys.path set-up above

FALCO = "0.40.0"
SOURCE = "deb:falcosecurity-scap-dkms/trixie"
BASE_IMAGE = "falco-reconciler/bookworm:base"
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def host_root(base: Path) -> tuple[Path, str]:
    """A host root running the newest cached kernel package, and that release."""
    debs = kernelpkg.cached()
    if not debs:
        raise SystemExit("no cached kernel packages: python -m tests.support.kernelpkg")
    newest = kernelpkg.unpack(debs[0], base / "kernel")
    root = base / "root"
    for folder in ("etc", "proc/sys/kernel"):
        (root / folder).mkdir(parents=True)
    (root / "etc/hostname").write_text("web-1\n")
    (root / "etc/os-release").write_text(DEBIAN_12)
    (root / "proc/sys/kernel/osrelease").write_text(newest.release + "\n")
    (root / "proc/sys/kernel/version").write_text(newest.uname_version + "\n")
    (root / "proc/sys/kernel/arch").write_text("x86_64\n")
    newest.install(root)
    return root, newest.release


def manifests(base: Path) -> Path:
    repo = base / "manifests"
    repo.mkdir()
    (repo / "web.yaml").write_text(falcohost.host_yaml(FALCO, "kmod") +
                                   "  kernels: running\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "host"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def prebuild(repo: Path, root: Path, store: Path, state: Path, *extra: str,
             expect: str = "of 1 drivers") -> float:
    argv = [sys.executable, "-m", "reconciler.cli", "--log-level", "warning", "prebuild",
            "--repo", str(repo), "--host-root", str(root), "--store", str(store),
            "--state-dir", str(state), "--source", SOURCE, "--base-image", BASE_IMAGE,
            *extra]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"prebuild {' '.join(extra)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=5)
    parser.add_argument("--no-cold", dest="cold", action="store_false")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fetch-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        root, release = host_root(base)
        repo = manifests(base)
        warm_state = base / "warm-state"
        warm_state.mkdir()
        (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
        (warm_state / "cache").symlink_to(CACHE_ROOT / "cache")
        headers = CACHE_ROOT / "cache/headers/x86_64/debian" / release
        warmth = "warm" if headers.is_dir() else "cold (this run fills it)"
        print(f"kernel {release}, Falco {FALCO} (driver 8.0.0+driver), {os.cpu_count()} cores;"
              f" header cache for it: {warmth}")
        built = base / "build-store"
        warm = prebuild(repo, root, built, warm_state, "--build", "always")
        print(f"build, warm caches:  {warm:7.2f} s")
        cold = None
        if args.cold:
            cold = prebuild(repo, root, base / "cold-store", base / "cold-state",
                            "--build", "always")
            print(f"build, cold caches:  {cold:7.2f} s   (headers and source downloaded)")
        port = free_port()
        with (base / "serve.log").open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "serve", "--store", str(built),
                 "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log, cwd=ROOT)
        try:
            wait_up(f"http://127.0.0.1:{port}/index.json")
            config = base / "fleet.yaml"
            config.write_text(f"build: never\nupstreams:\n"
                              f"  - {{url: 'http://127.0.0.1:{port}', kind: reconciler}}\n")
            fetches, idle = [], []
            for n in range(args.fetches):
                store, state = base / f"fetch-store-{n}", base / f"fetch-state-{n}"
                fetches.append(prebuild(repo, root, store, state, "--config", str(config)))
                # The same command with the driver in place: what is not the fetch.
                idle.append(prebuild(repo, root, store, state, "--config", str(config),
                                     expect="Nothing to build"))
                shutil.rmtree(store)
        finally:
            server.terminate()
            server.wait(10)
    fetch = statistics.median(fetches)
    print(f"fetch (median of {len(fetches)}): {fetch:7.2f} s   "
          f"(each: {', '.join(f'{s:.2f}' for s in fetches)})")
    overhead = statistics.median(idle)
    print(f"of which the command itself (start, plan; the same run with nothing to do): "
          f"{overhead:.2f} s, so the fetch proper takes about {fetch - overhead:.2f} s")
    print(f"ratio fetch / warm build: {fetch / warm:.3f}x")
    if cold is not None:
        print(f"ratio fetch / cold build: {fetch / cold:.3f}x")


if __name__ == "__main__":
    main()
