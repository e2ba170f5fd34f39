"""Build speed: our build of module + probe for one kernel vs a plain ``docker run``.

Both start cold for the kernel (no headers, no driver source on hand) in the same builder
image, side by side in one run, alternating so mirror and page-cache warmth are shared:

- plain: one ``docker run`` that installs ``linux-headers-<release>`` with apt, downloads
  and unpacks the driver package, then compiles the module and the probe, one after the
  other, as one would by hand;
- ours: ``builder.build_all`` with an empty state dir (headers and source fetched into its
  cache, compile, verify, publish).

Prints every round, the medians and the ratio ours/plain (target <= 1.15).

    python bench/build_speed.py [--rounds 3] [--release 6.1.0-57-cloud-amd64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import docker

from reconciler import logs
from reconciler.builder import images, runner, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.model.artifacts import DriverKind, KernelId

BASE_IMAGE = "falco-reconciler/bookworm:base"
SOURCE = "deb:falcosecurity-scap-dkms"

PLAIN = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends linux-headers-$RELEASE >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
       linux-headers-$RELEASE >/dev/null; }
mkdir -p /tmp/src && cd /tmp/src
apt-get download falcosecurity-scap-dkms >/dev/null 2>&1
dpkg-deb -x falcosecurity-scap-dkms_*.deb .
cd usr/src/scap-*
make -j$(nproc) KERNELDIR=/usr/src/linux-headers-$RELEASE >/dev/null
cd bpf && make KERNELDIR=/usr/src/linux-headers-$RELEASE >/dev/null
ls -l ../scap.ko probe.o
"""


def newest_release(eng: jobs.Engine, image: str) -> str:
    found = eng.run(
        image, "apt-cache search --names-only '^linux-headers-6\\.1\\.[0-9]+-[0-9]+-cloud-amd64$'"
        " | cut -d' ' -f1 | sort -V | tail -n1", network="host", timeout=120)
    return found.output.strip().removeprefix("linux-headers-")


def plain(eng: jobs.Engine, image: str, release: str) -> float:
    start = time.monotonic()
    result = eng.run(image, PLAIN, network="host", environment={"RELEASE": release},
                     timeout=1800)
    seconds = time.monotonic() - start
    if not result.ok:
        raise SystemExit(f"plain docker run failed:\n{result.output}")
    return seconds


def ours(client: object, release: str, round_no: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir="/var/tmp") as tmp:
        config = runner.BuildConfig(
            state_dir=Path(tmp) / "state", store=Path(tmp) / "store", source=SOURCE,
            base_image=BASE_IMAGE, jobs=os.cpu_count() or 1, timeout=1800)
        request = runner.BuildRequest(KernelId("debian", release, "1", "x86_64"),
                                      f"bench-{round_no}", (DriverKind.KMOD, DriverKind.EBPF))
        start = time.monotonic()
        (outcome,) = runner.build_all([request], config, Docker(client), Store(config.store))
        seconds = time.monotonic() - start
        if outcome.error is not None:
            raise SystemExit(str(outcome.error))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--release", default=None)
    args = parser.parse_args()
    logs.configure(level="warning")
    os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")
    client = docker.from_env(timeout=1800)
    eng = jobs.Jobs(Docker(client))
    with tempfile.TemporaryDirectory(prefix="bench-img-", dir="/var/tmp") as tmp:
        image = images.ensure(eng, BASE_IMAGE, Path(tmp), steps.BuildLog(Path(tmp) / "log"),
                              timeout=1800).reference
    release = args.release or newest_release(eng, image)
    print(f"builder image {image}, kernel {release}, {os.cpu_count()} cores")
    plains, ourss = [], []
    for round_no in range(args.rounds):
        plains.append(plain(eng, image, release))
        ourss.append(ours(client, release, round_no))
        print(f"round {round_no + 1}: plain docker run {plains[-1]:6.1f} s   "
              f"reconciler build {ourss[-1]:6.1f} s   ratio {ourss[-1] / plains[-1]:.2f}x")
    p, o = statistics.median(plains), statistics.median(ourss)
    paired = statistics.median(b / a for a, b in zip(plains, ourss, strict=True))
    print(f"median:  plain docker run {p:6.1f} s   reconciler build {o:6.1f} s   "
          f"ratio {o / p:.2f}x (median of per-round ratios {paired:.2f}x; target <= 1.15x)")


if __name__ == "__main__":
    main()
