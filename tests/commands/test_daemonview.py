"""commands.daemonview: the daemon's events as a person reads them on a terminal, each
said once, with the pass's builds live below."""

from __future__ import annotations

import io
import re

from reconciler import logs
from reconciler.builder import BuildEvent, Phase
from reconciler.commands import daemonview

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KO = "8.0.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko"


def _shown(run: object) -> str:
    out = io.StringIO()
    logs.configure("info", "console")
    try:
        with daemonview.display(out, force=True, width=200) as progress:
            assert callable(run)
            run(progress)
    finally:
        logs.configure()
    return ANSI.sub("", out.getvalue())


def test_a_pass_reads_as_its_plan_its_changes_and_its_end_each_once() -> None:
    log = logs.get("reconciler.test")

    def run(_progress: object) -> None:
        log.info("daemon.started", pid=1, serving="http://127.0.0.1:8000", repo="/srv/fleet")
        log.info("pass.started", number=1, trigger=["start"])
        log.info("pass.planned", revision="a" * 40, changes=2, summary="1 to build, 1 to create")
        log.info("change.applied", kind="driver", op="build", name=KO, message="",
                 seconds=31.25)
        log.error("change.failed", kind="container", op="create", name="falco",
                  message="Falco did not answer /healthz\nlast log: engine open failed",
                  seconds=60.0)
        log.info("pass.finished", number=1, result="failed", revision="a" * 40,
                 applied=None, seconds=92.4, message="1 of 2 change(s) failed")

    shown = _shown(run)
    assert "serving http://127.0.0.1:8000; following /srv/fleet (Ctrl-C stops)" in shown
    assert f"pass at {'a' * 12}: 1 to build, 1 to create" in shown
    assert f"✓ build {KO} (31.2 s)" in shown
    assert "✗ create falco: Falco did not answer /healthz\n      last log: engine open failed" \
        in shown
    assert "pass 1 failed in 92.4 s" in shown
    assert shown.count("Falco did not answer") == 1  # the end counts, it does not repeat
    assert "pass.started" not in shown and "{" not in shown  # no raw events, no JSON


def test_ctrl_c_says_which_build_it_finishes_then_that_it_cancels() -> None:
    log = logs.get("reconciler.test")

    def run(progress: daemonview.Progress) -> None:
        assert progress.build is not None
        progress.build(BuildEvent(KO, "compile", Phase.STARTED, 12.0))
        log.info("daemon.signal", signal="SIGINT")
        log.info("daemon.signal", signal="SIGINT")

    shown = _shown(run)
    assert f"finishing build {KO}; Ctrl-C again to cancel" in shown
    assert f"cancelling build {KO}" in shown


def test_off_a_terminal_nothing_is_drawn_and_events_stay_log_lines() -> None:
    out = io.StringIO()
    with daemonview.display(out) as progress:
        assert progress.build is None
    assert out.getvalue() == ""


def test_a_load_test_reads_as_one_line_with_its_result() -> None:
    log = logs.get("reconciler.test")

    def run(_progress: object) -> None:
        log.info("vm.boot.done", kernel="/cache/vmlinuz", exit_code=0, seconds=2.8)
        log.info("loadtest.done", artifact="/state/tmp/out/falco.ko", result="passed",
                 events=1743, drops=0, seconds=2.8, vm_log="/state/logs/x.vm.log")

    shown = _shown(run)
    assert "load test of falco.ko in a VM of its kernel: passed (1743 events, 0 drops, " \
        "2.8 s)" in shown
    assert "vm.boot.done" not in shown
