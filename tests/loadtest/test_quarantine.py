"""What status lists of the drivers the load test held back, read from the quarantine
folder the gate writes (the gate itself is tested on a real VM in test_gate.py)."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.commands.status import as_text
from reconciler.edges.store.local import Store
from reconciler.loadtest import quarantine
from reconciler.loadtest.result import LoadTestResult, Outcome, UserspaceCheck
from reconciler.model.artifacts import parse_relpath

RELPATH = "8.0.0+driver/x86_64/falco_debian_6.1.0-50-cloud-amd64_1.ko"


def test_status_lists_each_held_back_driver_with_its_reasons(tmp_path: Path) -> None:
    where = quarantine.folder(tmp_path) / RELPATH
    where.parent.mkdir(parents=True)
    where.write_bytes(b"module")
    long = ("BUG: kernel NULL pointer dereference, address: 0000000000000008 " * 4).strip()
    result = LoadTestResult(Outcome.FAILED, "kmod",
                            ("falco: disagrees about version of symbol module_layout", long))
    where.with_name(where.name + ".loadtest.json").write_text(json.dumps(result.to_json()))
    (quarantine.folder(tmp_path) / "stray.loadtest.json").write_text("{not json")

    (held,) = quarantine.listed(tmp_path)
    assert (held["path"], held["result"]) == (RELPATH, "failed")
    assert held["reasons"] == ["falco: disagrees about version of symbol module_layout", long]
    assert held["vmLog"] == str(where) + ".vm.log"
    shown = as_text({"quarantined": [held]})
    assert all(len(line) <= 100 for line in shown.splitlines())
    words = " ".join(shown.split())  # wrapped over lines, never cut
    assert (f"held back: {RELPATH} at " in words
            and "load test failed: falco: disagrees about version of symbol module_layout "
            + long in words)
    assert "…" not in shown


def test_nothing_held_back_without_a_quarantine_folder(tmp_path: Path) -> None:
    assert quarantine.listed(tmp_path) == []


def quarantined(state_dir: Path, relpath: str, result: LoadTestResult) -> None:
    where = quarantine.folder(state_dir) / relpath
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_bytes(b"module")
    where.with_name(where.name + ".loadtest.json").write_text(json.dumps(result.to_json()))


def test_held_back_says_why_for_the_keys_asked_about_only(tmp_path: Path) -> None:
    """What the planner gives the plan: the first reason and the VM log, per missing key."""
    key = parse_relpath(RELPATH)
    other = parse_relpath(RELPATH.replace("-50-", "-57-"))
    assert key is not None and other is not None
    quarantined(tmp_path, RELPATH, LoadTestResult(
        Outcome.FAILED, "kmod", ("insmod: can't insert 'falco.ko': Exec format error",),
        vm_log="/s/logs/a.vm.log"))
    assert quarantine.held_back(tmp_path, [key, other]) == [
        (key, "failed: insmod: can't insert 'falco.ko': Exec format error "
              "(VM log /s/logs/a.vm.log)")]
    assert quarantine.held_back(tmp_path / "none", [key]) == []


def test_status_shows_each_stored_drivers_test_the_unpassed_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    older = UserspaceCheck("0.18.1", ("0.39.0",), Outcome.LOADED, ("scap-open could not …",))
    for relpath, result in ((RELPATH, LoadTestResult(
            Outcome.PASSED, "kmod", (), True, 1709, 0, 5, 5, 7.3, "6.1.0-50-cloud-amd64",
            userspaces=(older,))),
            (RELPATH.replace(".ko", ".o"), LoadTestResult.untested("ebpf", "no QEMU")),
            (RELPATH.replace("-50-", "-57-"), None)):
        path = store.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        if result is not None:
            path.with_name(path.name + ".loadtest.json").write_text(
                json.dumps(result.to_json()))
    tests = quarantine.results((k.relpath, p) for k, p in store.artifact_paths())
    assert {t["path"]: t["result"] for t in tests} == {
        RELPATH: "passed", RELPATH.replace(".ko", ".o"): "untested",
        RELPATH.replace("-50-", "-57-"): "none"}
    assert {t["path"]: t["userspaces"] for t in tests}[RELPATH] == [older.to_json()]
    shown = as_text({"loadTests": tests}).splitlines()
    shown = shown[next(i for i, line in enumerate(shown) if line.startswith("drivers:")):]
    assert shown[0].startswith("drivers:   1 none, 1 passed, 1 untested")
    start = next(i for i, line in enumerate(shown) if line.startswith(f"  {RELPATH}:"))
    assert " ".join(shown[start:]).split() == (f"{RELPATH}: passed: 1709 events, 0 drops on "
                                            "6.1.0-50-cloud-amd64; Falco 0.39.0's userspace "
                                            "(libs 0.18.1) cannot read it").split()
    assert f"  {RELPATH.replace('.ko', '.o')}: untested: no QEMU" in shown


def test_unreadable_reads_a_stored_loaded_result_only(tmp_path: Path) -> None:
    """What the planner gives the plan for the Host's own driver: a stored ``loaded``
    result's libs version and reasons; a passed one, or none, gives nothing."""
    key = parse_relpath(RELPATH.replace(".ko", ".o"))
    assert key is not None
    store = Store(tmp_path)
    path = store.path_of(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"probe")
    assert quarantine.unreadable(store, key) == []
    sidecar = path.with_name(path.name + ".loadtest.json")
    sidecar.write_text(json.dumps(LoadTestResult(
        Outcome.LOADED, "ebpf", ("unable to mmap",), libs_version="0.20.0").to_json()))
    assert quarantine.unreadable(store, key) == [(key, "0.20.0", ("unable to mmap",))]
    sidecar.write_text(json.dumps(LoadTestResult(Outcome.PASSED, "ebpf").to_json()))
    assert quarantine.unreadable(store, key) == []
    assert quarantine.unreadable(store, None) == []
