"""The loop's scheduling with a scripted pass runner and real waits: transient failures
retried with a backoff that success resets, permanent ones held until a change, refusals
recorded, suspension honoured, a hanging pass reported unhealthy. With the fake clock
(``reconciler.testing.FakeClock``), the retry and poll timers and the watchdog's verdict are
shown to follow the clock, not the real waits."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon import control, state
from reconciler.daemon.backoff import Backoff
from reconciler.daemon.loop import Daemon
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.notify import Notifier
from reconciler.daemon.passes import GitHead, PassResult, Report
from reconciler.daemon.wakeup import Wakeup
from reconciler.edges.store.local import Store
from reconciler.settings import Settings
from reconciler.testing import FakeClock


class Scripted:
    """Stands in for passes.Runner: returns the scripted reports, records calls."""

    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports
        self.calls: list[dict[str, Any]] = []
        self.during: Callable[[], None] | None = None  # what happens while a pass runs

    def run(self, head: GitHead, **kwargs: Any) -> Report:
        self.calls.append({"head": head.revision, **kwargs})
        if self.during is not None:
            self.during()
        report = self.reports[min(len(self.calls), len(self.reports)) - 1]
        return Report(report.result, head.revision, head.revision, message=report.message,
                      transient=report.transient, rejection=report.rejection,
                      kernels=report.kernels)


@pytest.fixture
def looping(tmp_path: Path) -> Iterator[Callable[..., tuple[Daemon, Scripted, list[str]]]]:
    running: list[tuple[Daemon, threading.Thread]] = []

    def start(reports: list[Report], *, clock: FakeClock | None = None,
              backoff: Backoff | None = None,
              poll_interval: float = 3600) -> tuple[Daemon, Scripted, list[str]]:
        heads = ["r1"]
        scripted = Scripted(reports)
        daemon = Daemon(
            Settings(state_dir=tmp_path, store=tmp_path / "store", poll_interval=poll_interval),
            scripted, backoff=backoff or Backoff(base=0.05, cap=0.1),
            wakeup=Wakeup(debounce=0.01), notifier=Notifier({}),
            metrics=Metrics(Store(tmp_path / "store")),
            find=lambda _s: GitHead(heads[-1], "repo"), clock=clock,
        )
        thread = threading.Thread(target=daemon.run)
        daemon.started(1, "http://x")
        thread.start()
        running.append((daemon, thread))
        return daemon, scripted, heads

    yield start
    for daemon, thread in running:
        daemon.request_stop()
        thread.join(10)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_transient_failures_are_retried_and_success_resets_the_backoff(looping: Any) -> None:
    fail = Report(PassResult.ERROR, message="engine away", transient=True)
    daemon, scripted, _ = looping([fail, fail, fail, Report(PassResult.OK)])
    _until(lambda: daemon.status.applied_revision == "r1")
    assert len(scripted.calls) == 4
    assert daemon.status.retry_attempt == 0 and daemon.status.next_retry_at is None
    assert [e.transient for e in daemon.status.errors] == [True, True, True]


def test_a_permanent_failure_waits_for_a_new_revision_or_a_drift(looping: Any) -> None:
    broken = Report(PassResult.FAILED, message="Falco crashed", transient=False)
    daemon, scripted, heads = looping([broken, broken, Report(PassResult.OK)])
    _until(lambda: daemon.status.passes == 1)
    daemon.wakeup.wake("poll")  # a timer at the same revision: held
    time.sleep(0.2)
    assert len(scripted.calls) == 1 and daemon.status.next_retry_at is None
    daemon.wakeup.wake("docker:die")  # drift: run it again
    _until(lambda: len(scripted.calls) == 2)
    heads.append("r2")  # a new revision
    daemon.wakeup.wake("poll")
    _until(lambda: daemon.status.applied_revision == "r2")


def test_a_refused_revision_is_recorded_and_passed_back_as_refused(looping: Any) -> None:
    refused = Report(PassResult.REJECTED, message="kept r0", rejection="invalid manifests: a:1: x")
    daemon, scripted, _ = looping([refused, refused])
    _until(lambda: daemon.status.rejected is not None)
    assert daemon.status.rejected.revision == "r1"
    assert "a:1: x" in daemon.status.rejected.reason
    assert daemon.status.next_retry_at is None  # permanent: no retry timer
    daemon.wakeup.wake("sighup")
    _until(lambda: len(scripted.calls) == 2)
    assert scripted.calls[1]["refused"] == "r1"
    assert len([e for e in daemon.status.errors if "refused" in e.message]) == 1


def test_a_pass_that_could_not_plan_keeps_the_kernels_last_seen(looping: Any) -> None:
    seen = (state.KernelDriver("6.1.0-57-cloud-amd64", False, "x.ko", True),)
    daemon, _, _ = looping([Report(PassResult.OK, kernels=seen),
                            Report(PassResult.ERROR, message="engine away")])
    _until(lambda: daemon.status.passes == 1)
    assert daemon.status.kernels == seen
    daemon.wakeup.wake("kernel")
    _until(lambda: daemon.status.passes == 2)
    assert daemon.status.last_pass is not None and daemon.status.last_pass.result == "error"
    assert daemon.status.kernels == seen


def test_suspended_runs_no_pass_until_resumed(looping: Any, tmp_path: Path) -> None:
    control.set_suspended(tmp_path, True)
    daemon, scripted, _ = looping([Report(PassResult.OK)])
    _until(lambda: daemon.status.phase == "suspended")
    daemon.wakeup.wake("sighup")
    time.sleep(0.2)
    assert scripted.calls == []
    control.set_suspended(tmp_path, False)
    daemon.wakeup.wake("sighup")
    _until(lambda: daemon.status.applied_revision == "r1")
    assert json.loads((tmp_path / "status.json").read_text())["suspended"] is False


def test_a_pass_hanging_past_any_build_timeout_is_unhealthy(looping: Any) -> None:
    """The watchdog's verdict follows the clock: a pass still running once the build
    timeout and ten minutes more have passed is a hang; before and after it, healthy."""
    clock = FakeClock()
    daemon, scripted, _ = looping([Report(PassResult.OK), Report(PassResult.OK)], clock=clock)
    _until(lambda: daemon.status.applied_revision == "r1")
    assert daemon.healthy()
    seen: list[bool] = []

    def hang() -> None:
        seen.append(daemon.healthy())
        clock.advance(daemon.settings.build_timeout + 599)
        seen.append(daemon.healthy())
        clock.advance(2)
        seen.append(daemon.healthy())

    scripted.during = hang
    daemon.wakeup.wake("sighup")
    _until(lambda: daemon.status.passes == 2)
    assert seen == [True, True, False]
    assert daemon.healthy()  # the pass ended: waiting is always healthy


def test_a_transient_failure_is_retried_when_the_clock_reaches_its_backoff(
    looping: Any,
) -> None:
    clock = FakeClock()
    fail = Report(PassResult.ERROR, message="engine away", transient=True)
    daemon, scripted, _ = looping([fail, Report(PassResult.OK)], clock=clock,
                                  backoff=Backoff(base=0.2, cap=0.2))
    _until(lambda: daemon.status.passes == 1)
    assert daemon.status.retry_attempt == 1
    time.sleep(0.5)  # real time passes (the loop wakes several times); the clock does not
    assert len(scripted.calls) == 1
    clock.advance(0.2)
    _until(lambda: daemon.status.applied_revision == "r1")
    assert daemon.status.last_pass is not None
    assert daemon.status.last_pass.trigger == ("retry",)
    assert daemon.status.retry_attempt == 0 and daemon.status.next_retry_at is None


def test_the_next_retry_shown_is_the_clocks_time_plus_the_backoff(looping: Any) -> None:
    clock = FakeClock(start=2_000_000_000.0)  # 2033-05-18T03:33:20Z
    fail = Report(PassResult.ERROR, message="engine away", transient=True)
    daemon, _, _ = looping([fail], clock=clock, backoff=Backoff(base=100, cap=100))
    _until(lambda: daemon.status.passes == 1)
    # Equal jitter: between half the nominal 100 s and all of it.
    at = dt.datetime.fromisoformat(str(daemon.status.next_retry_at).replace("Z", "+00:00"))
    assert 2_000_000_050 - 1 < at.timestamp() <= 2_000_000_100


def test_the_poll_timer_runs_a_pass_when_the_clock_reaches_it(looping: Any) -> None:
    clock = FakeClock()
    daemon, scripted, _ = looping([Report(PassResult.OK)], clock=clock, poll_interval=0.05)
    _until(lambda: daemon.status.passes == 1)
    time.sleep(0.3)  # many real poll intervals; not one by the clock
    assert len(scripted.calls) == 1
    clock.advance(1)
    _until(lambda: daemon.status.passes == 2)
    assert daemon.status.last_pass is not None
    assert daemon.status.last_pass.trigger == ("poll",)


def test_a_pass_that_crashes_is_an_error_retried_and_the_loop_goes_on(looping: Any) -> None:
    """A bug in one pass must not stop the daemon (and its server): it is recorded as an
    internal error, retried like a transient failure, and the next pass runs."""
    daemon, scripted, _ = looping([Report(PassResult.OK)])

    def crash_once() -> None:
        if len(scripted.calls) == 1:
            raise RuntimeError("a bug")

    scripted.during = crash_once
    _until(lambda: daemon.status.applied_revision == "r1")
    assert len(scripted.calls) == 2
    [error] = daemon.status.errors
    assert error.message == "internal error: RuntimeError('a bug')" and error.transient


def test_a_restarted_daemon_keeps_what_the_last_one_applied_and_refused(
    tmp_path: Path,
) -> None:
    state.write(tmp_path, state.Status(
        pid=1, phase="running", applied_revision="r0", applied_at="2026-12-01T10:00:00Z",
        rejected=state.Rejection("r9", "invalid manifests: a:1: x", "2026-12-01T11:00:00Z"),
        current=state.PassRecord(7, ("poll",), "2026-12-01T12:00:00Z"), passes=7,
        retry_attempt=3, next_retry_at="2026-12-01T12:01:00Z"))
    daemon = Daemon(Settings(state_dir=tmp_path, store=tmp_path / "store"),
                    Scripted([]), wakeup=Wakeup(), notifier=Notifier({}),
                    metrics=Metrics(Store(tmp_path / "store")), clock=FakeClock())
    status = daemon.status
    assert (status.applied_revision, status.passes) == ("r0", 7)
    assert status.rejected is not None and status.rejected.revision == "r9"
    # What it was doing when it died is simply redone: no pass running, no retry pending.
    assert (status.phase, status.current, status.retry_attempt, status.next_retry_at) == (
        "starting", None, 0, None)
