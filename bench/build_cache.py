"""Build caches: what a second driver version and an already-built artifact cost.

Three builds for one kernel in a fresh state dir, counting the containers each starts
(docker events, by our labels) and what it downloads into the header cache:

1. driver version A, cold: builder image (shared), headers, source, compile;
2. driver version B, same kernel: must start no kernel-headers container and leave the
   header cache untouched (no header download at all);
3. driver version A again: already in the store, must start no container at all.

    python bench/build_cache.py [--release 6.1.0-57-cloud-amd64]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from reconciler import logs
from reconciler.builder import runner
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.store.local import Store
from reconciler.model.artifacts import DriverKind, KernelId

BASE_IMAGE = "falco-reconciler/bookworm:base"
SOURCE = "deb:falcosecurity-scap-dkms"


def created_since(client: Any, since: float) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for event in client.events(
        since=f"{since:.9f}", until=f"{time.time() + 0.5:.9f}", decode=True,
        filters={"type": "container", "event": "create",
                 "label": [f"{jobs.LABEL_ROLE}={jobs.ROLE_BUILDER}"]},
    ):
        counts[event["Actor"]["Attributes"].get(jobs.LABEL_STEP, "?")] += 1
    return counts


def tree_stamp(folder: Path) -> tuple[int, int]:
    """(files, bytes) under folder: changes if anything is downloaded into it."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="6.1.0-57-cloud-amd64")
    args = parser.parse_args()
    logs.configure(level="warning")
    os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")
    client = docker.from_env(timeout=1800)
    kernel = KernelId("debian", args.release, "1", "x86_64")
    with tempfile.TemporaryDirectory(prefix="bench-cache-", dir="/var/tmp") as tmp:
        config = runner.BuildConfig(
            state_dir=Path(tmp) / "state", store=Path(tmp) / "store", source=SOURCE,
            base_image=BASE_IMAGE, jobs=1, timeout=1800)
        header_cache = config.state_dir / "cache" / "headers"
        print(f"kernel {args.release}; containers started per step, header cache size")
        for label, version in (("1. version A, cold", "bench-A"),
                               ("2. version B, same kernel", "bench-B"),
                               ("3. version A again (in store)", "bench-A")):
            before = tree_stamp(header_cache)
            since = time.time()
            start = time.monotonic()
            (outcome,) = runner.build_all(
                [runner.BuildRequest(kernel, version, (DriverKind.KMOD,))], config, Docker(client),
                                          Store(config.store))
            seconds = time.monotonic() - start
            if outcome.error is not None:
                raise SystemExit(str(outcome.error))
            counts = created_since(client, since)
            after = tree_stamp(header_cache)
            downloaded = after[1] - before[1]
            print(f"{label:32s} {seconds:6.1f} s  containers {sum(counts.values())} "
                  f"{dict(sorted(counts.items()))}  header bytes fetched {downloaded}")


if __name__ == "__main__":
    main()
