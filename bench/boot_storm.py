"""Boot storm: 1,000 hosts booting at once, each fetching its 3 MB module, from one
reconciler server vs Debian's nginx on the same store folder.

``wrk -c1000 -H 'Connection: close'``: a thousand concurrent clients, each request on a
new connection as a booting host's loader makes it, for ``--duration`` seconds against
each server in turn, ``--rounds`` times alternating, in one run. Prints throughput, the
p50/p99 latency wrk measured and errors (connect/read/timeout and non-2xx) for both, the
medians, and the throughput ratio ours/nginx (target >= 0.8, with no errors).

    .venv/bin/python bench/boot_storm.py [--clients 1000] [--duration 15]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _servers  # the helper beside this script (sys.path above)

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class Storm:
    rps: float
    mbps: float
    p50_ms: float
    p99_ms: float
    errors: str  # wrk's socket error line and non-2xx count, "" when none

    @property
    def clean(self) -> bool:
        return not self.errors


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _TIME[unit]


def storm(url: str, clients: int, duration: int, threads: int) -> Storm:
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "30s",
         "--latency", "-H", "Connection: close", url],
        capture_output=True, text=True, check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    errors = [m[0].strip() for m in re.finditer(r"Socket errors:.*|Non-2xx or 3xx responses:.*",
                                                 out)]
    return Storm(rps, float(value) * _UNITS[unit] / 1024**2,
                 _ms(p50[1]) if p50 else float("nan"), _ms(p99[1]) if p99 else float("nan"),
                 "; ".join(errors))


def _median(found: list[Storm]) -> Storm:
    def mid(values: list[float]) -> float:
        return statistics.median(values)
    return Storm(mid([f.rps for f in found]), mid([f.mbps for f in found]),
                 mid([f.p50_ms for f in found]), mid([f.p99_ms for f in found]),
                 "; ".join(f.errors for f in found if f.errors))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="our server's worker threads")
    args = parser.parse_args()
    runs: dict[str, list[Storm]] = {"nginx": [], "reconciler": []}
    with contextlib.ExitStack() as stack, _servers.workdir() as work:
        store = _servers.make_store(work)
        urls = {"nginx": stack.enter_context(_servers.nginx(store, work))[0],
                "reconciler": stack.enter_context(_servers.ours(store, work, args.workers))[0]}
        for base in urls.values():
            storm(base + _servers.KEY.url_path(), 50, 1, args.threads)  # warm-up
        # Rounds alternate the two, so a noisy neighbour on the machine hits both alike.
        for round_no in range(1, args.rounds + 1):
            for name, base in urls.items():
                found = storm(base + _servers.KEY.url_path(), args.clients, args.duration,
                              args.threads)
                runs[name].append(found)
                print(f"round {round_no} {name:10s} {found.rps:8.1f} req/s {found.mbps:8.1f} "
                      f"MB/s  p50 {found.p50_ms:7.1f} ms  p99 {found.p99_ms:7.1f} ms  "
                      f"errors: {found.errors or 'none'}", flush=True)
    results = {name: _median(found) for name, found in runs.items()}
    print()
    for name, found in results.items():
        print(f"median {name:10s} {found.rps:8.1f} req/s  p50 {found.p50_ms:7.1f} ms  "
              f"p99 {found.p99_ms:7.1f} ms  errors in any round: "
              f"{'; '.join(r.errors for r in runs[name] if r.errors) or 'none'}")
    ratio = results["reconciler"].rps / results["nginx"].rps
    print(f"\n{args.clients} concurrent clients, a new connection per request, "
          f"{_servers.MODULE_SIZE} byte module, {args.duration} s each")
    print(f"ratio reconciler/nginx: {ratio:.2f} (target >= 0.8, no errors)")
    ok = ratio >= 0.8 and all(r.clean for r in runs["reconciler"])
    print("target:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
