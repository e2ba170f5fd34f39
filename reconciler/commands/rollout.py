"""``reconciler rollout status``: the waves of the head revision's Rollout, as the fleet's
Prometheus sees them: each wave's hosts with the revision they run and their health, the
gate about the wave before it, and how long until the wave moves if nothing changes.

It asks Prometheus three queries (every wave's counts, as a pass does; each host's series
with its sample time; each host's release time) and reads the manifests at the head; it
changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from reconciler import settings
from reconciler.desired import waves
from reconciler.edges.git import repo as gitrepo
from reconciler.edges.http import prometheus
from reconciler.errors import ConfigError, PrometheusError
from reconciler.manifests import loading
from reconciler.manifests.rollout import Rollout
from reconciler.model import cron

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rollout", help="the fleet's rollout waves, as Prometheus sees them",
                       description=__doc__)
    inner = p.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")
    status = inner.add_parser("status", help="draw the waves: hosts, revision, health, "
                              "time left", description=__doc__)
    settings.add_flags(status, "repo", "ref", "path", "state_dir")
    settings.add_flags(status, *settings.PROMETHEUS, config=False)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=run)


@dataclass(frozen=True)
class HostRow:
    host: str
    wave: str
    revision: str
    healthy: bool
    eta: float  # 0: nothing held there


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    snap = gitrepo.snapshot(conf.repo, conf.ref, conf.path, conf.state_dir,
                            loading.is_manifest_path, max_bytes=loading.MAX_FILE_BYTES)
    manifests = loading.load(snap.files or ())
    if not manifests.rollouts:
        print(f"no Rollout at {snap.revision[:12]}: every host takes each revision at once")
        return 0
    plan = manifests.rollouts[0].value
    client = prometheus.Prometheus.from_settings(conf, plan.metadata.name)
    if client is None:
        raise ConfigError("rollout status asks Prometheus: give --prometheus-url")
    view = client.view()
    if view.error:
        raise PrometheusError(view.error)
    rows = _hosts(client, plan.metadata.name)
    doc = describe(plan, snap.revision, view, rows, time.time())
    sys.stdout.write(json.dumps(doc, indent=1) + "\n" if args.json else draw(doc))
    return 0


def _hosts(client: prometheus.Prometheus, name: str) -> list[HostRow]:
    selector = f"{prometheus.METRIC}{{rollout={json.dumps(name)}}}"
    etas = {str(r["metric"].get("instance")): float(r["value"][1]) for r in client.query(
        "reconciler_rollout_eta_timestamp_seconds")}
    # A host's series of the revision it left stays visible for five minutes when
    # Prometheus was down as it changed (no staleness marker): keep each host's newest.
    newest: dict[str, tuple[int, HostRow]] = {}
    for r in client.query(f"timestamp({selector}) * 2000 + {selector}"):
        m = r["metric"]
        both = round(float(r["value"][1]))  # 2 * sample time in ms + value (0 or 1)
        healthy = both % 2 == 1
        row = HostRow(str(m.get("host") or m.get("instance")), str(m.get("wave")),
                      str(m.get("revision")), healthy, etas.get(str(m.get("instance")), 0.0))
        if row.host not in newest or newest[row.host][0] < both:
            newest[row.host] = (both, row)
    return sorted((row for _at, row in newest.values()), key=lambda row: row.host)


def describe(plan: Rollout, head: str, view: waves.FleetView, rows: list[HostRow],
             now: float) -> dict[str, Any]:
    """Pure: the waves, each with its hosts, its gate for ``head`` and its time left."""
    out: list[dict[str, Any]] = []
    for index, wave in enumerate(plan.spec.waves):
        mine = [r for r in rows if r.wave == wave.name]
        gate = None
        if index:
            reading = waves.read_gate(view, plan.spec.waves[index - 1].name, head)
            gate = {"state": reading.state.value, "says": reading.describe(head)}
        left = max((r.eta - now for r in mine if r.eta > now), default=0.0)
        out.append({
            "name": wave.name, "soak": wave.soak, "gate": gate,
            "seen": view.waves.get(wave.name, waves.WaveCounts()).members,
            "onHead": sum(1 for r in mine if r.revision == head),
            "timeLeft": round(left) if left else None,
            "hosts": [{"host": r.host, "revision": r.revision,
                       "health": "healthy" if r.healthy else "failing"} for r in mine],
        })
    return {"rollout": plan.metadata.name, "revision": head,
            "onFailure": plan.spec.on_failure.value, "waves": out}


def draw(doc: dict[str, Any]) -> str:
    head = str(doc["revision"])
    lines = [f"rollout {doc['rollout']} at {head[:12]} (onFailure: {doc['onFailure']})"]
    for wave in doc["waves"]:
        gate = wave["gate"]
        text = (f"wave {wave['name']}: {len(wave['hosts'])} host(s), {wave['onHead']} on "
                f"{head[:12]}, soak {wave['soak']}")
        if gate:
            text += f"; gate {gate['state']}: {gate['says']}"
        if wave["timeLeft"]:
            text += f"; moves in {cron.show_duration(wave['timeLeft'])}"
        lines.append(text)
        lines.extend(f"  {h['host']:<24} {h['revision'][:12]}  {h['health']}"
                     for h in wave["hosts"])
    return "\n".join(lines) + "\n"
