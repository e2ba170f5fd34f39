"""``reconciler rollout status``: the waves drawn from what Prometheus reports (pure part;
the command against a real Prometheus and daemons is in tests/daemon/test_rollout_e2e.py)."""

from __future__ import annotations

from reconciler.commands import rollout as command
from reconciler.desired.waves import FleetView, WaveCounts
from reconciler.manifests.models import Metadata
from reconciler.manifests.rollout import Rollout, RolloutSpec, Wave

PLAN = Rollout(api_version="falco-reconciler/v1", kind="Rollout",
               metadata=Metadata(name="fleet"),
               spec=RolloutSpec(waves=(Wave(name="canary", hostnames=("web-1",)),
                                       Wave(name="web", soak="30m"))))
HEAD = "a" * 40
OLD = "b" * 40


def test_each_wave_shows_its_hosts_its_gate_and_the_time_left() -> None:
    view = FleetView({"canary": WaveCounts(1, {HEAD: 1}, {HEAD: 1}),
                      "web": WaveCounts(2, {OLD: 2}, {OLD: 2})})
    rows = [command.HostRow("web-1", "canary", HEAD, True, 0.0),
            command.HostRow("web-2", "web", OLD, True, 1000.0 + 720),
            command.HostRow("web-3", "web", OLD, False, 1000.0 + 600)]
    doc = command.describe(PLAN, HEAD, view, rows, now=1000.0)
    assert [w["timeLeft"] for w in doc["waves"]] == [None, 720]
    assert command.draw(doc).splitlines() == [
        "rollout fleet at aaaaaaaaaaaa (onFailure: hold)",
        "wave canary: 1 host(s), 1 on aaaaaaaaaaaa, soak 0s",
        "  web-1                    aaaaaaaaaaaa  healthy",
        "wave web: 2 host(s), 0 on aaaaaaaaaaaa, soak 30m; gate open: 1 of 1 hosts healthy "
        "on aaaaaaaaaaaa; moves in 12m",
        "  web-2                    bbbbbbbbbbbb  healthy",
        "  web-3                    bbbbbbbbbbbb  failing",
    ]


def test_a_failing_canary_shows_on_the_next_wave() -> None:
    view = FleetView({"canary": WaveCounts(1, {HEAD: 1}, {HEAD: 0})})
    doc = command.describe(PLAN, HEAD, view, [], now=0.0)
    assert doc["waves"][1]["gate"] == {"state": "failing",
                                       "says": "1 of 1 hosts failing on aaaaaaaaaaaa"}
