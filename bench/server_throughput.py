"""Throughput of the driver server next to Debian's nginx and ``python -m http.server``.

64 concurrent keep-alive clients (``wrk -t2 -c64 -d10s``) fetch the same 3 MB module on
loopback from each server in turn, in one run, with the same wrk settings. Prints req/s
and MB/s for each and the ratio ours/nginx (the issue's target: >= 0.8).

    .venv/bin/python bench/server_throughput.py [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers  # the helper beside this script (sys.path above)

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def run_wrk(url: str, duration: int, connections: int, threads: int,
            verbose: bool = False) -> tuple[float, float, int]:
    """(requests/s, MB/s, non-2xx responses) as wrk reports them."""
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()  # type: ignore[union-attr]
    mbps = float(value) * _UNITS[unit] / 1024**2
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if errors:
        print(f"    wrk: {errors[0]}")
    if latency and (errors or verbose):
        print(f"    wrk latency avg {latency[1]} stdev {latency[2]} max {latency[3]}")
    return rps, mbps, int(bad[1]) if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each runs wrk against every server in turn")
    parser.add_argument("--workers", type=int, default=None, help="our server's worker threads")
    args = parser.parse_args()

    names = ("nginx", "reconciler", "http.server")
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack, _servers.workdir() as work:
        store = _servers.make_store(work)
        # All three run side by side; only the one under wrk is busy. Rounds interleave
        # them, so a noisy neighbour on the machine hits all of them alike.
        urls = {
            "nginx": stack.enter_context(_servers.nginx(store, work))[0],
            "reconciler": stack.enter_context(_servers.ours(store, work, args.workers))[0],
            "http.server": stack.enter_context(_servers.python_http_server(store, work))[0],
        }
        for name in names:  # warm-up: caches, page cache, TCP
            run_wrk(urls[name] + _servers.KEY.url_path(), 1, args.connections, args.threads)
        for round_no in range(1, args.rounds + 1):
            for name in names:
                result = run_wrk(urls[name] + _servers.KEY.url_path(), args.duration,
                                 args.connections, args.threads)
                runs[name].append(result)
                rps, mbps, bad = result
                print(f"round {round_no} {name:12s} {rps:9.1f} req/s {mbps:9.1f} MB/s"
                      f"  non-2xx: {bad}", flush=True)

    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s x {args.rounds} rounds,"
          f" {_servers.MODULE_SIZE} byte module, median per server:")
    medians = {name: (statistics.median(r[0] for r in runs[name]),
                      statistics.median(r[1] for r in runs[name])) for name in names}
    for name in names:
        rps, mbps = medians[name]
        print(f"{name:12s} {rps:9.1f} req/s {mbps:9.1f} MB/s")
    nginx_rps = medians["nginx"][0]
    for name in ("reconciler", "http.server"):
        print(f"ratio {name}/nginx: {medians[name][0] / nginx_rps:.2f}")
    ok = medians["reconciler"][0] / nginx_rps >= 0.8
    print("target reconciler/nginx >= 0.8:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
