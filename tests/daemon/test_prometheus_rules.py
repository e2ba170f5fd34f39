"""docs/prometheus-rules.yaml: Prometheus's own promtool checks it and replays series
through it (a failed canary fires; a healthy fleet fires nothing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus-rules.yaml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("Debian's prometheus (promtool) is not installed")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def test_the_rules_are_valid() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_alerts_fire_on_what_they_watch_and_only_then(tmp_path: Path) -> None:
    labels = 'instance="h1:9100"'
    cases = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f"reconciler_last_pass_success{{{labels}}}", "values": "1 0x30"},
                {"series": 'reconciler_rollout_failed{rollout="fleet",wave="canary",'
                           f'revision="abc",host="web-1",{labels}}}', "values": "_ 1x5"},
                {"series": f"reconciler_rollout_held_seconds{{{labels}}}",
                 "values": "0+600x60"},
                {"series": f"reconciler_kernels_without_driver{{{labels}}}", "values": "0x60"},
                {"series": f"reconciler_falco_ready{{{labels}}}", "values": "1x60"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "ReconcilerPassFailing", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "ReconcilerPassFailing", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "instance": "h1:9100"},
                     "exp_annotations": {
                         "summary": "h1:9100: the reconciler's passes fail",
                         "description": "The last pass did not apply everything for 15 "
                                        "minutes; `reconciler status` on the host says why."}}]},
                {"eval_time": "3m", "alertname": "ReconcilerRolloutRevisionFailed",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "rollout": "fleet",
                                                "wave": "canary", "revision": "abc"},
                                 "exp_annotations": {
                                     "summary": "rollout fleet: revision abc failed in wave "
                                                "canary",
                                     "description": "Later waves will not get it; with "
                                     "onFailure: rollback its hosts went back to the last "
                                     "revision that passed."}}]},
                {"eval_time": "30m", "alertname": "ReconcilerRevisionStuckInWave",
                 "exp_alerts": []},
                {"eval_time": "50m", "alertname": "ReconcilerRevisionStuckInWave",
                 "exp_alerts": [{"exp_labels": {"severity": "warning",
                                                "instance": "h1:9100"},
                                 "exp_annotations": {
                                     "summary": "h1:9100: a new revision has waited over 6 h "
                                                "for its rollout wave",
                                     "description": "`reconciler rollout status` draws the "
                                     "waves and says which gate is closed."}}]},
                {"eval_time": "60m", "alertname": "ReconcilerKernelWithoutDriver",
                 "exp_alerts": []},
                {"eval_time": "60m", "alertname": "FalcoNotReady", "exp_alerts": []},
                {"eval_time": "60m", "alertname": "ReconcilerLoadTestFailed",
                 "exp_alerts": []},
            ],
        }],
    }
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(json.dumps(cases))  # YAML is a superset of JSON
    tested = _promtool("test", "rules", str(test_file))
    assert tested.returncode == 0, tested.stdout + tested.stderr
