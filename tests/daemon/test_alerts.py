"""Alerts over real HTTP: a loopback receiver records what the sender POSTs, fails the
first tries (the retry), or never answers (nothing waits on it: neither ``send`` nor the
daemon's loop). Backoff delays are made tiny through the sender's own ``Backoff``; no
assertion is about time."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.status import as_text
from reconciler.daemon import events, state
from reconciler.daemon.alerts import Alerts, body
from reconciler.daemon.backoff import Backoff
from reconciler.daemon.loop import Daemon
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.notify import Notifier
from reconciler.daemon.passes import GitHead, PassResult, Report
from reconciler.daemon.wakeup import Wakeup
from reconciler.edges.store.local import Store
from reconciler.model.upstreams import AlertFormat, AlertTarget
from reconciler.settings import Settings
from tests.support import upstreams as ups

FAST = Backoff(base=0.001, cap=0.002)


class Receiver:
    """A loopback webhook: records each body; answers 500 to the first ``fail`` requests;
    with ``hang``, answers nothing until the test ends."""

    def __init__(self, fail: int = 0, hang: bool = False) -> None:
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.fail = fail
        self.released = threading.Event()
        if not hang:
            self.released.set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = json.loads(self.rfile.read(length))
                receiver.bodies.append(data)
                receiver.paths.append(self.path)
                receiver.released.wait(30)
                failing = len(receiver.bodies) <= receiver.fail
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.stop()


@pytest.fixture
def sender() -> Iterator[Callable[..., Alerts]]:
    made: list[Alerts] = []

    def make(targets: list[AlertTarget], **kwargs: Any) -> Alerts:
        made.append(Alerts(targets, host="web-1", backoff=FAST, **kwargs).start())
        return made[-1]

    yield make
    for one in made:
        one.close(flush=0)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


EVENT = events.Event(events.Kind.BUILD_FAILED, "build of 8.0.0/x.ko failed: no headers",
                     "2026-01-02T03:04:05.000Z", "abc123", {"name": "8.0.0/x.ko"})


def test_every_target_gets_the_event_in_its_shape(receiver: Any, sender: Any) -> None:
    plain, slack = receiver(), receiver()
    alerts = sender([AlertTarget(plain.url()), AlertTarget(slack.url(), AlertFormat.SLACK)])
    alerts.send(EVENT)
    _until(lambda: alerts.counts().sent == 2)
    assert plain.bodies == [{
        "event": "build-failed", "host": "web-1", "revision": "abc123",
        "message": "build of 8.0.0/x.ko failed: no headers", "time": "2026-01-02T03:04:05.000Z",
        "details": {"name": "8.0.0/x.ko"},
    }]
    assert slack.bodies == [{
        "text": "falco-reconciler on web-1: build-failed: build of 8.0.0/x.ko failed: "
                "no headers"}]


def test_slack_text_escapes_its_markup_characters() -> None:
    event = events.Event(events.Kind.PASS_FAILED, "a <b> & c", "t")
    sent = body(event, AlertTarget("http://x", AlertFormat.SLACK), "h")
    assert json.loads(sent) == {
        "text": "falco-reconciler on h: pass-failed: a &lt;b&gt; &amp; c"}


def test_a_failing_target_is_retried_until_it_takes_the_event(receiver: Any,
                                                              sender: Any) -> None:
    flaky = receiver(fail=2)
    alerts = sender([AlertTarget(flaky.url())])
    alerts.send(EVENT)
    _until(lambda: alerts.counts().sent == 1)
    assert len(flaky.bodies) == 3 and flaky.bodies[0] == flaky.bodies[2]
    assert alerts.counts() == state.AlertCounts(sent=1)


def test_a_target_that_keeps_failing_is_given_up_and_logged_without_its_secret(
        receiver: Any, sender: Any, capsys: Any) -> None:
    down = receiver(fail=100)
    alerts = sender([AlertTarget(down.url("/services/T0/B0/SECRET"))], attempts=3)
    alerts.send(EVENT)
    _until(lambda: alerts.counts().failed == 1)
    assert len(down.bodies) == 3 and alerts.counts().sent == 0
    logged = capsys.readouterr().err
    assert "alert.failed" in logged and "SECRET" not in logged


def test_a_hanging_target_blocks_no_send_and_times_out(receiver: Any, sender: Any) -> None:
    hung, fine = receiver(hang=True), receiver()
    alerts = sender([AlertTarget(hung.url()), AlertTarget(fine.url())], timeout=0.2,
                    attempts=2)
    alerts.send(EVENT)
    _until(lambda: len(hung.bodies) == 1)  # the POST is in flight, unanswered
    alerts.send(EVENT)  # returns although the worker is stuck in that POST
    # Each hung attempt times out; the other target still gets both events.
    _until(lambda: alerts.counts().failed == 2)
    _until(lambda: alerts.counts().sent == 2)
    assert len(fine.bodies) == 2


def test_beyond_the_bound_the_oldest_waiting_events_are_dropped(receiver: Any) -> None:
    hung = receiver(hang=True)
    alerts = Alerts([AlertTarget(hung.url())], host="h", bound=2, timeout=5, backoff=FAST)
    alerts.start()
    try:
        first = events.Event(events.Kind.ROLLBACK, "first", "t")
        alerts.send(first)
        _until(lambda: len(hung.bodies) == 1)  # taken by the worker: no longer waiting
        for n in range(5):
            alerts.send(events.Event(events.Kind.ROLLBACK, f"later {n}", "t"))
        assert alerts.counts().dropped == 3  # "later 0..2": the two newest still wait
        hung.released.set()
        _until(lambda: alerts.counts().sent == 3)
        assert [b["message"] for b in hung.bodies] == ["first", "later 3", "later 4"]
    finally:
        alerts.close(flush=0)


def test_close_gives_up_what_still_waits(receiver: Any) -> None:
    down = receiver(fail=100)
    alerts = Alerts([AlertTarget(down.url())], host="h", attempts=6,
                    backoff=Backoff(base=3600, cap=3600)).start()
    alerts.send(EVENT)
    _until(lambda: len(down.bodies) == 1)  # failed once; the retry is an hour away
    alerts.close(flush=0.1)
    assert alerts.counts() == state.AlertCounts(failed=1)
    alerts.send(EVENT)  # after close: ignored, not queued
    assert alerts.counts() == state.AlertCounts(failed=1)


# -- the daemon: a pass hands its events over and goes on --------------------------------


class Passes:
    """Stands in for passes.Runner: every pass applies the head."""

    def run(self, head: GitHead, **_kwargs: Any) -> Report:
        return Report(PassResult.OK, head.revision, head.revision, message="1 change(s) applied")


def test_the_loop_runs_on_while_an_alert_target_hangs(receiver: Any, tmp_path: Path) -> None:
    hung = receiver(hang=True)
    alerts = Alerts([AlertTarget(hung.url())], host="h", timeout=30).start()
    heads = ["r1"]
    wakeup = Wakeup(debounce=0.01)
    daemon = Daemon(
        Settings(state_dir=tmp_path, store=tmp_path / "store", poll_interval=3600), Passes(),
        wakeup=wakeup, notifier=Notifier({}), metrics=Metrics(Store(tmp_path / "store")),
        find=lambda _s: GitHead(heads[-1], "repo"), alerts=alerts,
    )
    thread = threading.Thread(target=daemon.run)
    daemon.started(1, "http://x")
    thread.start()
    try:
        _until(lambda: len(hung.bodies) == 1)  # r1's alert is stuck in its POST
        heads.append("r2")
        wakeup.wake("git")
        _until(lambda: daemon.status.applied_revision == "r2")
        assert not hung.released.is_set()
        assert [b["event"] for b in hung.bodies] == ["revision-applied"]
        hung.released.set()
        _until(lambda: alerts.counts().sent == 2)
        assert [b["revision"] for b in hung.bodies] == ["r1", "r2"]
        wakeup.wake("sighup")  # one more pass: the counts reach the status file
        _until(lambda: (state.read(tmp_path) or state.Status()).alerts
               == state.AlertCounts(sent=2))
        shown = as_text((state.read(tmp_path) or state.Status()).to_json())
        assert "alerts:    2 sent, 0 failed, 0 dropped" in shown.splitlines()
    finally:
        daemon.request_stop()
        thread.join(10)
        alerts.close(flush=0)


def test_a_target_answering_garbage_is_retried_and_given_up_not_a_dead_sender(
        sender: Any, receiver: Any) -> None:
    """Before: http.client.BadStatusLine (not an OSError) escaped the sender's thread and
    every later alert was silently never sent. Now it is a failed POST like any other."""
    good = receiver()
    with ups.raw_server(ups.garbage) as (url, heads):
        alerts = sender([AlertTarget(url + "/hook")], attempts=2)
        alerts.send(EVENT)
        _until(lambda: alerts.counts().failed == 1)
        assert len(heads) == 2
        alerts.targets = (AlertTarget(good.url()),)  # the same sender thread goes on
        alerts.send(EVENT)
        _until(lambda: alerts.counts().sent == 1)
