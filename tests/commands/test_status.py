"""``reconciler status`` as a person reads it (commands/status.py): whole causes, wrapped;
no word said twice; whether each kernel has its driver ready; a state dir no daemon has
used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.builder import BuildEvent, Phase
from reconciler.daemon import building, control, lock, state

CAUSE = ("build of 8.0.0+driver/x86_64/falco_debian_6.1.0-28-cloud-amd64_1.ko failed at "
         "step compile: make exited with 2\n"
         "/tmp/build/driver/main.c:1234:5: error: implicit declaration of function "
         "'tracepoint_probe_register_prio_may_exist'; did you mean 'tracepoint_probe_register'?"
         " [-Werror=implicit-function-declaration]\n"
         "make[1]: *** [scripts/Makefile.build:250: main.o] Error 1")


def _status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
    return capsys.readouterr().out


def test_a_failing_steps_cause_is_shown_whole_and_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    record = state.PassRecord(7, ("poll",), state.now(), "a" * 40, result="failed",
                              outcomes=({"op": "build", "name": "falco_debian.ko",
                                         "result": "failed", "message": CAUSE},))
    state.write(tmp_path, state.Status(pid=1, last_pass=record).with_error(
        state.ErrorRecord(state.now(), CAUSE, "a" * 40)))
    out = _status(tmp_path, capsys)
    words = " ".join(out.split())
    assert "[-Werror=implicit-function-declaration]" in words  # nothing cut
    assert "make[1]: *** [scripts/Makefile.build:250: main.o] Error 1" in words
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_suspended_is_said_once_and_nothing_applied_reads_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    state.write(tmp_path, state.Status(pid=1, phase="suspended"))
    control.set_suspended(tmp_path, True)
    out = _status(tmp_path, capsys)
    assert out.count("suspended") == 1 and "SUSPENDED" not in out
    assert "applied:   nothing yet" in out and "none at -" not in out
    state.write(tmp_path, state.Status(pid=1, phase="idle"))
    # Asked while no daemon runs: said once, beside the phase.
    assert "daemon:    not running, stopped, suspended\n" in _status(tmp_path, capsys)


def test_status_shows_whether_each_kernel_has_its_driver_ready(
    tmp_path: Path, capsys: Any,
) -> None:
    folder = "8.0.0+driver/x86_64"
    kernels = (state.KernelDriver("6.1.0-50-cloud-amd64", True,
                                  f"{folder}/falco_debian_6.1.176-1-cloud-amd64_1.ko", True),
               state.KernelDriver("6.1.0-57-cloud-amd64", False,
                                  f"{folder}/falco_debian_6.1.192-3-cloud-amd64_1.ko", False))
    state.write(tmp_path, state.Status(pid=1, kernels=kernels))
    back = state.read(tmp_path)
    assert back is not None and back.kernels == kernels
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    at = next(n for n, line in enumerate(shown) if line.startswith("kernels:"))
    assert shown[at + 1].split() == ["6.1.0-50-cloud-amd64", "running", "ready",
                                     kernels[0].artifact]
    assert shown[at + 2].split() == ["6.1.0-57-cloud-amd64", "installed", "NOT", "READY",
                                     kernels[1].artifact]


def test_status_without_any_daemon_says_so(tmp_path: Path, capsys: Any) -> None:
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no daemon has run" in capsys.readouterr().err


def test_status_shows_the_build_in_progress_and_the_last_pass_that_changed_something(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    applied = state.PassRecord(4, ("git",), state.now(), "b" * 40, result="ok",
                               outcomes=({"op": "build", "name": "x.ko", "result": "ok",
                                          "message": "built"},))
    quiet = state.PassRecord(5, ("poll",), state.now(), "b" * 40, result="ok")
    state.write(tmp_path, state.Status(pid=1, last_pass=quiet, last_changes=applied))
    building.Building(tmp_path).event(BuildEvent("y.ko [kmod]", "compile", Phase.STARTED, 2))
    with lock.StateDirLock(tmp_path):  # a daemon runs on this state dir
        out = _status(tmp_path, capsys)
        assert cli.main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
    assert "building:  y.ko [kmod]: compile since" in out
    assert f"changed:   pass 4 ok at {'b' * 12}" in out and "ok       build x.ko: built" in out
    assert doc["building"][0]["step"] == "compile"
    assert doc["lastChanges"]["number"] == 4
