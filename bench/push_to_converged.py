"""Push to converged: from ``git push`` returning to the new Falco container running.

A daemon (``reconciler run``) follows a bare repository on this host; each round pushes a
Host manifest whose Falco env changed (no build needed), so the daemon must see the push
(inotify on the refs), plan, and replace the container. The end mark is the engine's own
``start`` event of the new container (its timestamp, not when we notice it). The next
push waits until the pass has finished. Falco is the local stand-in image, wrapped to exit
on SIGTERM as Falco does (see tests/daemon/conftest.py).

Prints every round, the median and p90, the target (median <= 2 s) and median/target.

    python bench/push_to_converged.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import threading
import time
from typing import Any

from _daemon import Site, host_yaml, site

TARGET = 2.0


def _starts(client: Any, name: str, seen: dict[str, float], stop: threading.Event) -> None:
    stream = client.events(decode=True, filters={"type": "container", "event": ["start"],
                                                  "container": [name]})
    for event in stream:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        revision = attrs.get("io.falco-reconciler.revision", "")
        if attrs.get("name") == name and revision:
            seen[revision] = event["timeNano"] / 1e9
        if stop.is_set():
            break
    stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    here, client = site()
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_starts, args=(client, here.name, seen, stop),
                               daemon=True)
    watcher.start()
    first = here.push({"web.yaml": host_yaml(here.name, here.image)})
    daemon = here.daemon("--settle", "1", "--stop-timeout", "10")
    try:
        daemon.applied(first, timeout=120)
        times = []
        for round_ in range(args.rounds):
            revision = _push(here, round_)
            pushed = time.time()
            daemon.applied(revision, timeout=60)
            deadline = time.monotonic() + 10
            while revision not in seen and time.monotonic() < deadline:
                time.sleep(0.01)
            took = seen[revision] - pushed
            times.append(took)
            print(f"round {round_ + 1:2}: {took:.3f} s")
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        print(json.dumps({"rounds": len(times), "median_s": round(median, 3),
                          "p90_s": round(p90, 3), "target_median_s": TARGET,
                          "median_over_target": round(median / TARGET, 2)}))
        print(f"push to converged: median {median:.3f} s, p90 {p90:.3f} s "
              f"(target: median <= {TARGET} s; ratio {median / TARGET:.2f})")
    finally:
        stop.set()
        here.cleanup()
        shutil.rmtree(here.tmp, ignore_errors=True)


def _push(here: Site, round_: int) -> str:
    return here.push({"web.yaml": host_yaml(here.name, here.image,
                                            env={"ROUND": str(round_)})})


if __name__ == "__main__":
    main()
