"""Generate the manifest repository the plan speed benchmark reads.

    python bench/gen_manifests.py OUTDIR [--hostname NAME] [--measure]

OUTDIR becomes a git repository (one commit) of 200 YAML files holding 2,000 ``Host``
documents and 20,000 driver builds, all valid. The content is shaped like a real fleet:

* ``hosts/`` : 20 files of 100 Hosts each, every one matched to its own hostname globs
  (``web-0042-*``); exactly one matches the benchmark host (``HOSTNAME`` below, or
  ``--hostname``) and sits in the last file but one, so ``host_for`` walks most of the list;
  the very last Host has no ``match`` and catches every other host;
* ``builds/`` : 120 files of ``DriverBuild`` documents for varied targets, kernels, driver
  versions and both architectures; about one in ten is limited to ``build-*`` hosts, the
  rest apply to every host, as a driverkit grid does;
* ``driverkit/config/<driverversion>/<x86_64|aarch64>/`` : 60 files of plain driverkit
  configs (multi-document), driver version and architecture taken from the folder as in
  upstream's grid.

The output is deterministic (a fixed seed), so runs compare like with like.

``--measure`` then times ``reconciler.manifests.loading.load`` against a bare
``yaml.load_all(..., Loader=yaml.CSafeLoader)`` of the same files (interleaved, best of 5
each) and
prints both and the ratio; ``bench/plan_speed.py`` measures the whole ``plan``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from reconciler.manifests import loading

HOSTNAME = "bench-host-1"
HOST_FILES, HOSTS_PER_FILE = 20, 100
BUILD_FILES, CONFIG_FILES = 120, 60
TOTAL_BUILDS = 20_000
CONFIG_SHARE = 6_800  # of TOTAL_BUILDS, as plain driverkit configs

FALCO = [  # (Falco release, its driver version)
    ("0.32.2", "2.0.0+driver"), ("0.33.1", "3.0.1+driver"), ("0.34.1", "4.0.0+driver"),
    ("0.35.1", "5.0.1+driver"), ("0.36.2", "6.0.1+driver"), ("0.37.1", "7.0.0+driver"),
    ("0.38.2", "7.2.1+driver"), ("0.39.2", "7.3.0+driver"), ("0.40.0", "8.0.0+driver"),
]
DRIVER_VERSIONS = [driver for _, driver in FALCO]
ROLES = ["web", "api", "db", "cache", "queue", "batch", "edge", "search", "ml", "ci"]


def kernel(rng: random.Random, arch: str) -> tuple[str, str, str]:
    """A (target, kernelrelease, kernelversion) of the kind each distribution ships."""
    x86 = arch == "amd64"
    machine = "x86_64" if x86 else "aarch64"
    pick = rng.randrange(9)
    if pick == 0:
        abi = rng.choice([13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 26, 27, 28])
        flavor = rng.choice(["amd64", "cloud-amd64"] if x86 else ["arm64", "cloud-arm64"])
        return "debian", f"5.10.0-{abi}-{flavor}", "1"
    if pick == 1:
        abi = rng.choice([9, 10, 11, 12, 13, 15, 16, 17, 18, 20, 21, 22, 23, 25, 26, 27])
        flavor = rng.choice(["amd64", "cloud-amd64"] if x86 else ["arm64", "cloud-arm64"])
        return "debian", f"6.1.0-{abi}-{flavor}", "1"
    if pick == 2:
        abi = rng.randrange(56, 131)
        return "ubuntu-generic", f"5.15.0-{abi}-generic", str(abi + rng.randrange(0, 20))
    if pick == 3:
        abi = rng.randrange(1030, 1070)
        return "ubuntu-aws", f"5.15.0-{abi}-aws", str(abi + rng.randrange(0, 10))
    if pick == 4:
        abi = rng.randrange(1020, 1060)
        return "ubuntu-gke", f"5.15.0-{abi}-gke", f"{abi + 3}~20.04.1"
    if pick == 5:
        sub = rng.randrange(50, 230)
        return "amazonlinux2", f"5.10.{sub}-{rng.randrange(150, 220)}.{rng.randrange(500, 800)}" \
            f".amzn2.{machine}", "1"
    if pick == 6:
        sub = rng.randrange(15, 120)
        return "amazonlinux2023", f"6.1.{sub}-{rng.randrange(20, 200)}.{rng.randrange(50, 300)}" \
            f".amzn2023.{machine}", "1"
    if pick == 7:
        return "centos", f"4.18.0-{rng.randrange(240, 553)}.el8.{machine}", "1"
    minor = rng.randrange(0, 5)
    return "rocky", f"5.14.0-{rng.randrange(70, 430)}.{rng.randrange(1, 40)}.1.el9_{minor}" \
        f".{machine}", "1"


def host_doc(index: int, hostname_globs: list[str] | None, rng: random.Random) -> str:
    falco, driver = rng.choice(FALCO)
    modes = ["kmod", "ebpf"] + (["modern_ebpf"] if falco >= "0.35" else [])
    lines = [
        "apiVersion: falco-reconciler/v1",
        "kind: Host",
        "metadata:",
        f"  name: fleet-{index:04d}",
        "spec:",
    ]
    if hostname_globs is not None:
        lines += ["  match:", f"    hostnames: [{', '.join(repr(g) for g in hostname_globs)}]"]
    lines += [
        "  falco:",
        f"    version: {falco}",
        f"    driver: {rng.choice(modes)}",
        "    env:",
        f"      FALCO_GRPC_ENABLED: \"{rng.choice(['true', 'false'])}\"",
        f"      TZ: {rng.choice(['UTC', 'Europe/Berlin', 'America/New_York'])}",
    ]
    if rng.random() < 0.2:
        lines.append(f"    driverVersion: {driver}")
    if rng.random() < 0.3:
        target, release, version = kernel(rng, "amd64")
        lines += [
            "  kernels:",
            f"    - target: {target}",
            f"      kernelRelease: {release}",
            f"      kernelVersion: \"{version}\"",
        ]
    return "\n".join(lines) + "\n"


def build_doc(index: int, rng: random.Random) -> str:
    arch = "amd64" if rng.random() < 0.8 else "arm64"
    target, release, version = kernel(rng, arch)
    lines = [
        "apiVersion: falco-reconciler/v1",
        "kind: DriverBuild",
        "metadata:",
        f"  name: {target}-{release}-{version.replace('~', '-')}-{index:05d}",
        "spec:",
    ]
    if rng.random() < 0.1:
        lines += ["  match:", "    hostnames: [\"build-*\"]"]
    lines += [
        f"  target: {target}",
        f"  driverVersion: {rng.choice(DRIVER_VERSIONS)}",
        f"  kernelRelease: {release}",
        f"  kernelVersion: \"{version}\"",
        f"  architecture: {arch}",
        f"  outputs: [{rng.choice(['kmod', 'kmod, ebpf', 'ebpf'])}]",
    ]
    return "\n".join(lines) + "\n"


def config_doc(driver_version: str, machine: str, rng: random.Random) -> str:
    arch = "amd64" if machine == "x86_64" else "arm64"
    target, release, version = kernel(rng, arch)
    stem = f"output/{driver_version}/{machine}/falco_{target}_{release}_{version}"
    lines = [
        f"kernelversion: {version if version.isdigit() else repr(version)}",
        f"kernelrelease: {release}",
        f"target: {target}",
        f"architecture: {arch}",
        "output:",
        f"  module: {stem}.ko",
        f"  probe: {stem}.o",
    ]
    return "\n".join(lines) + "\n"


def bench_host_root(work: Path) -> Path:
    """The host the benchmark fleet is planned for: Debian 11 on the 5.10 cloud kernel."""
    root = work / "host"
    (root / "etc").mkdir(parents=True)
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "etc/hostname").write_text(f"{HOSTNAME}\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="11"\n')
    (root / "proc/sys/kernel/osrelease").write_text("5.10.0-14-cloud-amd64\n")
    (root / "proc/sys/kernel/version").write_text("#1 SMP Debian 5.10.113-1 (2022-04-29)\n")
    (root / "proc/sys/kernel/arch").write_text("x86_64\n")
    return root


def generate(root: Path, hostname: str = HOSTNAME) -> dict[str, int]:
    """Write the files under ``root``; returns counts per kind."""
    rng = random.Random(20240601)
    files: dict[str, list[str]] = {}
    bench_index = (HOST_FILES - 2) * HOSTS_PER_FILE + HOSTS_PER_FILE // 2
    total_hosts = HOST_FILES * HOSTS_PER_FILE
    for index in range(total_hosts):
        role = ROLES[index % len(ROLES)]
        if index == bench_index:
            globs: list[str] | None = [hostname.rsplit("-", 1)[0] + "-*"]
        elif index == total_hosts - 1:
            globs = None  # the catch-all
        else:
            globs = [f"{role}-{index:04d}-*", f"{role}-{index:04d}"]
        name = f"hosts/fleet-{index // HOSTS_PER_FILE:02d}.yaml"
        files.setdefault(name, []).append(host_doc(index, globs, rng))

    explicit = TOTAL_BUILDS - CONFIG_SHARE
    for index in range(explicit):
        name = f"builds/batch-{index * BUILD_FILES // explicit:03d}.yaml"
        files.setdefault(name, []).append(build_doc(index, rng))

    for index in range(CONFIG_SHARE):
        slot = index * CONFIG_FILES // CONFIG_SHARE
        driver_version = DRIVER_VERSIONS[slot % len(DRIVER_VERSIONS)]
        machine = "x86_64" if slot % 4 else "aarch64"
        name = f"driverkit/config/{driver_version}/{machine}/grid-{slot:02d}.yaml"
        files.setdefault(name, []).append(config_doc(driver_version, machine, rng))

    for name, documents in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n".join(documents), encoding="utf-8")
    return {"files": len(files), "hosts": total_hosts, "builds": TOTAL_BUILDS}


def commit(root: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_AUTHOR_DATE": "2024-06-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-06-01T00:00:00Z",
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "bench manifests")
    return git("rev-parse", "HEAD").strip()


def measure(root: Path, rounds: int = 5) -> tuple[float, float]:
    """Best-of-``rounds`` seconds: CSafeLoader alone, then ``loading.load``."""
    files = [
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and loading.is_manifest_path(path.relative_to(root).as_posix())
    ]

    def parse() -> Any:
        return [list(yaml.load_all(content, Loader=yaml.CSafeLoader)) for _, content in files]

    def load() -> Any:
        return loading.load(files)

    def timed(run: Callable[[], Any]) -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    # Interleaved, so a busy machine slows both sides alike; best of each.
    rounds_taken = [(timed(parse), timed(load)) for _ in range(rounds)]
    return min(p for p, _ in rounds_taken), min(q for _, q in rounds_taken)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--hostname", default=HOSTNAME, help="the host one Host must match")
    parser.add_argument("--measure", action="store_true",
                        help="then time loading.load against CSafeLoader alone")
    args = parser.parse_args(argv)
    root: Path = args.outdir
    if root.exists() and any(root.iterdir()):
        print(f"{root} is not empty", file=sys.stderr)
        return 1
    root.mkdir(parents=True, exist_ok=True)
    counts = generate(root, args.hostname)
    revision = commit(root)
    print(f"{root}: {counts['files']} files, {counts['hosts']} hosts, {counts['builds']} driver "
          f"builds at {revision[:12]}; benchmark host: {args.hostname}")
    if args.measure:
        parse_s, load_s = measure(root)
        print(f"CSafeLoader parse: {parse_s:.3f} s  loading.load: {load_s:.3f} s  "
              f"ratio: {load_s / parse_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
