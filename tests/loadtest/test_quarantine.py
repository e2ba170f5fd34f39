"""What status lists of the drivers the load test held back, read from the quarantine
folder the gate writes (the gate itself is tested on a real VM in test_gate.py)."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.commands.status import as_text
from reconciler.loadtest import quarantine
from reconciler.loadtest.result import LoadTestResult, Outcome

RELPATH = "8.0.0+driver/x86_64/falco_debian_6.1.0-50-cloud-amd64_1.ko"


def test_status_lists_each_held_back_driver_with_its_reasons(tmp_path: Path) -> None:
    where = quarantine.folder(tmp_path) / RELPATH
    where.parent.mkdir(parents=True)
    where.write_bytes(b"module")
    result = LoadTestResult(Outcome.FAILED, "kmod",
                            ("falco: disagrees about version of symbol module_layout",))
    where.with_name(where.name + ".loadtest.json").write_text(json.dumps(result.to_json()))
    (quarantine.folder(tmp_path) / "stray.loadtest.json").write_text("{not json")

    (held,) = quarantine.listed(tmp_path)
    assert (held["path"], held["result"]) == (RELPATH, "failed")
    assert held["reasons"] == ["falco: disagrees about version of symbol module_layout"]
    assert held["vmLog"] == str(where) + ".vm.log"
    shown = as_text({"quarantined": [held]})
    assert (f"held back: {RELPATH} at " in shown
            and "load test failed: falco: disagrees about version of symbol module_layout"
            in shown)


def test_nothing_held_back_without_a_quarantine_folder(tmp_path: Path) -> None:
    assert quarantine.listed(tmp_path) == []
