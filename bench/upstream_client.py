"""Upstream client cost: what the one HTTP client (a deadline watch per exchange, read1
loops) costs against the tree it replaced, side by side in one run.

A loopback ``http.server`` serves one 8 MiB file; each tree's ``upstream.Client`` makes
``--heads`` HEADs (as a survey of a repository does, one per artifact) and ``--downloads``
downloads of the file. Each tree runs in its own child process, alternating, ``--rounds``
times; the medians are printed.

    python bench/upstream_client.py [--old /work/main] [--heads 300] [--downloads 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import io, json, sys, time
sys.path.insert(0, sys.argv[1])
from reconciler.edges.http import upstream
from reconciler.model.upstreams import Upstream
url, heads, downloads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = upstream.Client(Upstream(url))
start = time.perf_counter()
for _ in range(heads):
    assert client.head(url + "/f").status == 200
mid = time.perf_counter()
for _ in range(downloads):
    client.download(url + "/f", io.BytesIO())
end = time.perf_counter()
print(json.dumps({"head_ms": (mid - start) * 1000 / heads,
                  "download_ms": (end - mid) * 1000 / downloads}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="/work/main")
    ap.add_argument("--heads", type=int, default=300)
    ap.add_argument("--downloads", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support import upstreams as ups  # noqa: PLC0415 - after the path is set

    body = bytes(range(256)) * (32 << 10)
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with ups.file_server(ups.Behaviour(files={"/f": body})) as (url, seen):
        for _ in range(args.rounds):
            for name, tree in (("old", args.old), ("new", str(ROOT))):
                seen.requests.clear()
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, tree, url, str(args.heads),
                     str(args.downloads)], check=True, capture_output=True, text=True)
                results[name].append(json.loads(done.stdout))
    print(f"{args.heads} HEADs, {args.downloads} downloads of {len(body) >> 20} MiB, "
          f"median of {args.rounds} rounds")
    for name, runs in results.items():
        head = statistics.median(r["head_ms"] for r in runs)
        down = statistics.median(r["download_ms"] for r in runs)
        print(f"  {name}: {head:.2f} ms per HEAD, {down:.1f} ms per download")


if __name__ == "__main__":
    main()
