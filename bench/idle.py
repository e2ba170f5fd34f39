"""Idle cost of the daemon: CPU (% of one core) and RSS over 60 s with nothing to do.

The daemon follows a bare repository, serves the store, watches the refs and the store
with inotify, follows Docker events, and serves metrics; it has converged (the stand-in
Falco runs) before the measurement starts. CPU is utime+stime from /proc/<pid>/stat over
the window; RSS is sampled each second (its maximum is reported).

Prints both figures, their targets (< 1% of a core, < 100 MB) and the ratios.

    python bench/idle.py [--seconds 60] [--poll-interval 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import time
from pathlib import Path

from _daemon import host_yaml, site

CPU_TARGET = 1.0  # % of one core
RSS_TARGET = 100.0  # MB


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll-interval", default="60")
    args = parser.parse_args()
    here, _client = site()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    revision = here.push({"web.yaml": host_yaml(here.name, here.image)})
    daemon = here.daemon("--poll-interval", args.poll_interval,
                         "--metrics-listen", f"127.0.0.1:{metrics_port}")
    try:
        daemon.applied(revision, timeout=120)
        time.sleep(2)  # let the first pass's aftermath settle
        assert daemon.proc is not None
        pid = daemon.proc.pid
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        rss = []
        while time.monotonic() - t0 < args.seconds:
            rss.append(_rss_mb(pid))
            time.sleep(1)
        cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        passes = daemon.status()["passes"]
        peak = max(rss)
        print(json.dumps({"seconds": args.seconds, "cpu_percent_of_core": round(cpu, 3),
                          "cpu_target": CPU_TARGET, "cpu_over_target": round(cpu / CPU_TARGET, 2),
                          "rss_mb_max": round(peak, 1), "rss_target_mb": RSS_TARGET,
                          "rss_over_target": round(peak / RSS_TARGET, 2),
                          "passes_so_far": passes}))
        print(f"idle over {args.seconds:.0f} s: CPU {cpu:.3f}% of a core "
              f"(target < {CPU_TARGET}%, ratio {cpu / CPU_TARGET:.2f}); "
              f"RSS max {peak:.1f} MB (target < {RSS_TARGET:.0f} MB, "
              f"ratio {peak / RSS_TARGET:.2f})")
    finally:
        here.cleanup()
        shutil.rmtree(here.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
