"""Benchmark: what a staged rollout costs a pass, on a 1,000-host fleet.

A real Prometheus (Debian's package, loopback) scrapes one endpoint that stands for 1,000
reconcilers (honor_labels: each series carries its host's ``instance``), spread over
three waves (1% canary, 10% early, the rest) of a Rollout, the canary already on a new
revision. Measured on one host (web-0500, in the last wave):

  decide    the pure decision alone, from a fleet view already read (per host, per pass)
  query     the one Prometheus query a pass makes (every wave's counts, aggregated)
  pass      a daemon pass's planning without a Rollout in the manifests (git, manifests,
            facts, desired, the store and Docker observed, diff) against the same with
            one: rollout.choose (ledger, head and running manifests, Prometheus, decide)
            and then the plan of the revision chosen. Interleaved rounds, medians.

Query volume: one query per host per pass (plus one per custom gate query of a wave not
yet released), whatever the fleet's size; the answer is a few series per wave.

Usage: python bench/rollout.py [--rounds 15] [--hosts 1000]
Needs Debian's prometheus and a Docker engine at DOCKER_HOST.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import prometheus_client as prom  # noqa: E402

from reconciler import logs, runtime  # noqa: E402
from reconciler.daemon import rollout as stage  # noqa: E402
from reconciler.desired import rollout, waves  # noqa: E402
from reconciler.edges.http import prometheus  # noqa: E402
from reconciler.manifests import loading  # noqa: E402
from reconciler.settings import Settings  # noqa: E402
from tests.conftest import GitRepo  # noqa: E402
from tests.support import prometheus as promserver  # noqa: E402
from tests.support.upstreams import free_port  # noqa: E402

ROLLOUT = """apiVersion: falco-reconciler/v1
kind: Rollout
metadata: {name: fleet}
spec:
  waves:
  - {name: canary, hostnames: [web-*], percent: 1}
  - {name: early, hostnames: [web-*], percent: 10, soak: 30m}
  - {name: rest, soak: 1h}
"""
HOST = """apiVersion: falco-reconciler/v1
kind: Host
metadata: {name: web}
spec:
  match: {hostnames: [web-*]}
  falco: {version: 0.37.1, driver: modern_ebpf, containerName: falco-bench-rollout,
          env: {STEP: "%s"}}
"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def fleet_endpoint(hosts: list[str], plan: object, old: str, new: str) -> tuple[object, int]:
    registry = prom.CollectorRegistry()
    gauge = prom.Gauge("reconciler_rollout_healthy", "bench", ["rollout", "wave", "revision",
                                                               "instance"], registry=registry)
    for host in hosts:
        wave = plan.spec.waves[waves.wave_of(plan, host)].name  # type: ignore[attr-defined]
        gauge.labels("fleet", wave, new if wave == "canary" else old, host).set(1)
    port = free_port()
    server, _thread = prom.start_http_server(port, "127.0.0.1", registry=registry)
    return server, port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hosts", type=int, default=1000)
    args = parser.parse_args()
    logs.configure("warning")  # the held decision is logged on every pass otherwise
    hosts = [f"web-{n:04d}" for n in range(args.hosts)]
    me = hosts[len(hosts) // 2]
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        repo = GitRepo(tmp / "repo")
        old = repo.commit({"rollout.yaml": ROLLOUT, "host.yaml": HOST % 0})
        new = repo.commit({"host.yaml": HOST % 1})
        plan = loading.load([("r.yaml", ROLLOUT.encode())]).rollouts[0].value
        server, port = fleet_endpoint(hosts, plan, old, new)
        counts = {w.name: sum(1 for h in hosts if plan.spec.waves[waves.wave_of(plan, h)]
                              is w) for w in plan.spec.waves}
        with promserver.running(tmp / "prom", [f"127.0.0.1:{port}"], honor_labels=True) as p:
            deadline = time.monotonic() + 30
            while len(p.query("reconciler_rollout_healthy")) < len(hosts):
                if time.monotonic() > deadline:
                    sys.exit("prometheus did not scrape the fleet")
                time.sleep(0.3)
            client = prometheus.Prometheus(p.url, "fleet")
            queries = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                view = client.view()
                queries.append(time.perf_counter() - start)
            assert not view.error, view.error
            history = rollout.see(rollout.History(target=old, good=(old,)), old, time.time())

            class Read:
                def view(self) -> waves.FleetView:
                    return view

                def holds(self, query: str) -> bool | None:
                    return None

            decisions = []
            for _ in range(args.rounds * 20):
                start = time.perf_counter()
                made = rollout.decide(plan, me, new, time.time(), history, gates=Read(),
                                      changes=lambda _r: True)
                decisions.append(time.perf_counter() - start)
            settings = Settings(repo=str(repo.path), host_root=Path("/"), hostname=me,
                                store=tmp / "store", state_dir=tmp / "state",
                                prometheus_url=p.url)
            with runtime.open_runtime(settings) as rt:
                without, with_rollout = [], []
                rt.planner(ref=new).plan()  # warm: manifests cached, as in a daemon
                stage.choose(rt, str(repo.path), new, applied=old)
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    rt.planner(ref=new).plan()
                    without.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    choice = stage.choose(rt, str(repo.path), new, applied=old)
                    assert choice is not None
                    rt.planner(ref=choice.revision).plan()
                    with_rollout.append(time.perf_counter() - start)
        server.shutdown()  # type: ignore[attr-defined]
    print(f"fleet: {len(hosts)} hosts, waves {counts}; host {me} in wave {made.wave}")
    print(f"decision: {made.held or 'released'}")
    print(f"decide (pure, one host, one pass):   {median_ms(decisions):8.3f} ms")
    print(f"Prometheus query (one per pass):     {median_ms(queries):8.3f} ms  "
          f"answer: {sum(len(c.on) + 1 for c in view.waves.values())} series")
    print(f"Prometheus queries per pass: 1 per host, {len(hosts)} fleet-wide "
          f"({len(hosts) / 60:.1f}/s at the default 60 s poll)")
    base, extra = statistics.median(without), statistics.median(with_rollout)
    print(f"pass planning without a Rollout:     {base * 1000:8.2f} ms")
    print(f"pass planning with a Rollout:        {extra * 1000:8.2f} ms  "
          f"ratio {extra / base:.2f}x")


if __name__ == "__main__":
    main()
