"""The daemon's loop: wait for a trigger, run one pass, record it, schedule the next.

Level-triggered: every pass looks at everything (``passes``), whatever woke it; the
trigger only says *when*. Scheduling rules:

- the poll timer fires every ``poll_interval`` (jittered); any pass restarts it;
- a pass that failed for a transient reason (repository or engine unreachable, a build
  timeout...) is retried after an exponential, jittered backoff that resets on success;
- a permanent failure (a refused revision, a build that fails for good, a Falco that
  crashes) is not retried by the timer while the revision stays the same: only a new
  revision, a drift (Docker, store), SIGHUP or ``reconciler reconcile`` runs it again;
- while suspended (``control.json``), no pass runs; the server keeps serving.

Each finished pass is also read for what needs a person (``events``); those events are
handed to the alert sender (``alerts``), which only queues them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reconciler import logs
from reconciler.daemon import control, events, state
from reconciler.daemon.alerts import Alerts
from reconciler.daemon.backoff import Backoff, jittered
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.notify import Notifier
from reconciler.daemon.passes import GitHead, PassResult, PassRunner, Report, find_head
from reconciler.daemon.wakeup import Wakeup
from reconciler.edges.clock import Clock, SystemClock
from reconciler.errors import ReconcilerError
from reconciler.model import timestamps
from reconciler.settings import Settings

log = logs.get(__name__)
TIMER_REASONS = frozenset({"poll", "retry"})


def short(revision: str | None) -> str:
    return revision[:12] if revision else "none"


class Daemon:
    def __init__(
        self, settings: Settings, reconciler: PassRunner, *,
        wakeup: Wakeup, notifier: Notifier, metrics: Metrics,
        find: Callable[[Settings], GitHead] = find_head, backoff: Backoff | None = None,
        alerts: Alerts | None = None, clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()  # what the timers, retries and watchdog follow
        self.reconciler = reconciler
        self.backoff = backoff or Backoff(base=2.0, cap=max(2.0, settings.backoff_max))
        self.wakeup = wakeup
        self.notifier = notifier
        self.metrics = metrics
        self.find = find
        self.alerts = alerts
        self._seen = events.Seen()
        self.state_dir: Path = settings.state_dir
        self._stopping = False
        self._attempt = 0
        self._retry_at: float | None = None
        self._next_poll = 0.0
        self._pass_started: float | None = None
        previous = state.read(self.state_dir) or state.Status()
        # A restart picks up where the last daemon stopped: what it applied, what it
        # refused, its last pass. Whatever it was doing when it died is simply redone.
        self.status = replace(previous, current=None, phase="starting", next_retry_at=None,
                              retry_attempt=0)
        if previous.applied_revision and previous.applied_at:
            self.metrics.applied(previous.applied_revision,
                                 _epoch(previous.applied_at, self.clock.time()))

    # -- outside world ------------------------------------------------------------------

    def healthy(self) -> bool:
        """False once a pass has run far longer than any build may: it hangs, and systemd's
        watchdog should restart us. Waiting for a trigger is always healthy."""
        started = self._pass_started
        limit = self.settings.build_timeout + 600
        return started is None or self.clock.monotonic() - started < limit

    def request_stop(self) -> None:
        self._stopping = True
        self.wakeup.wake("stop")

    def _save(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        state.write(self.state_dir, self.status)

    def _say(self, text: str) -> None:
        self.notifier.status(text)

    # -- the loop -----------------------------------------------------------------------

    def started(self, pid: int, serving: str) -> None:
        self._save(pid=pid, started_at=state.now(), serving=serving, phase="idle")
        self.wakeup.wake("start")

    def run(self) -> None:
        try:
            while not self._stopping:
                reasons = self.wakeup.wait(self._timeout())
                if self._stopping:
                    break
                now = self.clock.monotonic()
                if self._retry_at is not None and now >= self._retry_at:
                    reasons.add("retry")
                if now >= self._next_poll:
                    reasons.add("poll")
                if not reasons:
                    continue
                self._next_poll = now + jittered(self.settings.poll_interval)
                if self._suspended():
                    continue
                self._pass(reasons)
        except KeyboardInterrupt:
            # SIGTERM during a build: the build was cancelled and cleaned, now stop.
            log.info("daemon.interrupted")
        finally:
            self._save(phase="stopped", current=None)

    def _timeout(self) -> float:
        deadline = self._next_poll
        if self._retry_at is not None:
            deadline = min(deadline, self._retry_at)
        return max(0.0, deadline - self.clock.monotonic())

    def _suspended(self) -> bool:
        try:
            wanted = control.read(self.state_dir)
        except ReconcilerError as exc:
            log.error("control.unreadable", error=str(exc))
            return False
        self.metrics.suspended.set(1 if wanted.suspended else 0)
        if wanted.suspended:
            if self.status.phase != "suspended" or not self.status.suspended:
                log.info("daemon.suspended", since=wanted.since)
                self._save(phase="suspended", suspended=True, next_retry_at=None)
                self._say(f"suspended since {wanted.since}; serving {self.status.serving}")
            self._retry_at = None
            return True
        if self.status.suspended:
            log.info("daemon.resumed")
            self._save(suspended=False, phase="idle")
        return False

    def _blocked(self, reasons: set[str], head: GitHead) -> bool:
        """A permanent failure at this revision, and only a timer woke us: do not hammer."""
        last = self.status.last_pass
        return (
            reasons <= TIMER_REASONS and last is not None
            and last.result in (PassResult.FAILED, PassResult.ERROR) and not last.transient
            and last.revision == head.revision
        )

    def _pass(self, reasons: set[str]) -> None:
        number = self.status.passes + 1
        record = state.PassRecord(number, tuple(sorted(reasons)), state.now())
        started = self.clock.monotonic()
        self._save(phase="running", current=record)
        self._say(f"pass {number} running ({', '.join(sorted(reasons))})")
        log.info("pass.started", number=number, trigger=sorted(reasons))
        self.wakeup.pass_started()
        self._pass_started = started
        try:
            report = self._report(reasons)
        finally:
            self._pass_started = None
            self.wakeup.pass_finished()
        if report is None:
            self._save(phase="idle", current=None)
            self._say(self._summary())
            return
        self._record(record, report, self.clock.monotonic() - started)

    def _report(self, reasons: set[str]) -> Report | None:
        try:
            head = self.find(self.settings)
        except ReconcilerError as exc:
            return Report(PassResult.ERROR, None, message=str(exc), transient=exc.transient)
        if self._blocked(reasons, head):
            log.info("pass.held", revision=head.revision,
                     why="failed for good at this revision; waiting for a change")
            return None
        refused = self.status.rejected.revision if self.status.rejected else None
        try:
            return self.reconciler.run(head, last_good=self.status.applied_revision,
                                       refused=refused, container=self.status.container)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug in one pass must not stop serving
            log.exception("pass.crashed", error=repr(exc))
            return Report(PassResult.ERROR, head.revision, message=f"internal error: {exc!r}",
                          transient=True)

    def _alert(self, report: Report) -> state.AlertCounts | None:
        """Queue what this pass means for people; the sender's counts so far."""
        if self.alerts is None or not self.alerts.enabled:
            return None
        found, self._seen = events.detect(report, self._seen,
                                          applied=self.status.applied_revision, at=state.now())
        for event in found:
            self.alerts.send(event)
        return self.alerts.counts()

    def _record(self, record: state.PassRecord, report: Report, seconds: float) -> None:
        counts = self._alert(report)
        outcomes = tuple(o.to_json() for o in report.outcomes)
        finished = replace(record, revision=report.head, finished_at=state.now(),
                           result=report.result.value, seconds=seconds, message=report.message,
                           transient=report.transient, outcomes=outcomes)
        status = replace(self.status, passes=record.number, last_pass=finished, current=None,
                         phase="idle", head_revision=report.head or self.status.head_revision,
                         container=report.container or self.status.container,
                         kernels=self.status.kernels if report.kernels is None
                         else report.kernels, alerts=counts or self.status.alerts,
                         last_changes=finished if outcomes else self.status.last_changes,
                         held=report.rollout.decision.held or None if report.rollout else None)
        if report.result is PassResult.OK and report.head:
            # The revision planned: the head, or the one a rollout wave keeps it on.
            applied = report.planned or report.head
            if status.applied_revision != applied:
                log.info("revision.applied", revision=applied)
            status = replace(status, applied_revision=applied, applied_at=state.now(),
                             rejected=None)
            self.metrics.applied(applied, self.clock.time())
        elif report.result is PassResult.REJECTED and report.head and (
                status.rejected is None or status.rejected.revision != report.head):
                status = replace(status, rejected=state.Rejection(
                    report.head, report.rejection or report.message, state.now()))
                status = status.with_error(state.ErrorRecord(
                    state.now(), f"revision {short(report.head)} refused: "
                    f"{report.rejection}", report.head, False))
        if report.result in (PassResult.FAILED, PassResult.ERROR):
            status = status.with_error(state.ErrorRecord(state.now(), report.message,
                                                         report.head, report.transient))
        if report.transient:
            self._attempt += 1
            delay = self.backoff.delay(self._attempt)
            self._retry_at = self.clock.monotonic() + delay
            status = replace(status, retry_attempt=self._attempt,
                             next_retry_at=_iso_at(self.clock.time() + delay))
            log.warning("pass.retry", attempt=self._attempt, seconds=round(delay, 1))
        else:
            if report.result in (PassResult.OK, PassResult.REJECTED):
                self._attempt = 0
            self._retry_at = None
            status = replace(status, retry_attempt=self._attempt, next_retry_at=None)
        self.status = status
        state.write(self.state_dir, status)
        self.metrics.record_pass(report.result.value, seconds, outcomes)
        self.metrics.rejected.set(1 if status.rejected else 0)
        self._export(report)
        log.info("pass.finished", number=record.number, result=report.result.value,
                 revision=report.head, applied=status.applied_revision,
                 seconds=round(seconds, 3), message=report.message)
        self._say(self._summary())

    def _export(self, report: Report) -> None:
        """What gates and alerts read of this pass (a pass that could not run says nothing:
        a Docker hiccup must not read as a failed revision)."""
        if report.result is PassResult.ERROR:
            return
        ok = report.result in (PassResult.OK, PassResult.REJECTED)  # REJECTED: the last good ran
        self.metrics.host(falco_ready=ok and report.container is not None, kernels=[
            (k.running, k.ready) for k in report.kernels or ()])
        if report.rollout is not None:
            self.metrics.rollout(report.rollout.name, report.rollout.decision.wave,
                                 report.rollout.revision, host=report.rollout.host,
                                 healthy=ok, held_since=report.rollout.held_since,
                                 eta=report.rollout.decision.eta,
                                 failed=report.rollout.failed)

    def _summary(self) -> str:
        s = self.status
        text = f"applied {short(s.applied_revision)}"
        if s.rejected:
            text += f"; refused {short(s.rejected.revision)}"
        if s.held:
            text += f"; {s.held}"
        if s.last_pass:
            text += f"; last pass {s.last_pass.result}"
        if s.next_retry_at:
            text += f"; retry at {s.next_retry_at}"
        return text + f"; serving {s.serving}"


def _iso_at(epoch: float) -> str:
    return timestamps.iso_utc(dt.datetime.fromtimestamp(epoch, dt.UTC))


def _epoch(iso: str, fallback: float) -> float:
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback
