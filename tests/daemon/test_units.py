"""The daemon's pure parts and small adapters, without Docker: backoff, debouncing,
scheduling (transient vs permanent), the lock, the status and control files, the
webhook's authentication over real HTTP, and commit signature checks with real git."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.daemon import control, lock, state
from reconciler.daemon.backoff import Backoff, jittered
from reconciler.daemon.loop import Daemon
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.notify import Notifier
from reconciler.daemon.passes import GitHead, PassResult, Report
from reconciler.daemon.wakeup import Wakeup
from reconciler.daemon.webhook import WebhookServer, authentic
from reconciler.edges.git import signatures as gitsign
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError
from reconciler.settings import Settings
from tests.conftest import GitRepo

# -- backoff ---------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    policy = Backoff(base=2, cap=60)
    rng = random.Random(1)
    for attempt, nominal in [(1, 2), (2, 4), (3, 8), (6, 60), (20, 60)]:
        for _ in range(50):
            assert nominal / 2 <= policy.delay(attempt, rng) <= nominal
    spread = {round(jittered(60, rng=rng)) for _ in range(200)}
    assert min(spread) >= 54 and max(spread) <= 66 and len(spread) > 5


# -- wakeup ----------------------------------------------------------------------------


def test_a_burst_of_triggers_is_one_wakeup_with_every_reason() -> None:
    wakeup = Wakeup(debounce=0.1)

    def burst() -> None:
        for reason in ("git", "git", "webhook", "sighup"):
            wakeup.wake(reason)
            time.sleep(0.02)

    threading.Thread(target=burst).start()
    assert wakeup.wait(5) == {"git", "webhook", "sighup"}
    assert wakeup.wait(0.05) == set()


def test_drift_events_caused_by_our_own_pass_are_dropped() -> None:
    wakeup = Wakeup(debounce=0.01)
    wakeup.pass_started()
    during = time.time()
    wakeup.wake("docker:die", at=during)
    wakeup.pass_finished()
    wakeup.wake("docker:destroy", at=during)  # delivered late, happened during the pass
    assert wakeup.wait(0.05) == set()
    wakeup.wake("docker:die", at=time.time())
    assert wakeup.wait(1) == {"docker:die"}


# -- lock, status, control ---------------------------------------------------------------


def test_one_daemon_per_state_dir(tmp_path: Path) -> None:
    assert lock.holder(tmp_path) is None
    with lock.StateDirLock(tmp_path):
        assert lock.holder(tmp_path) is not None
        with pytest.raises(ConfigError, match="another daemon"):
            lock.StateDirLock(tmp_path).acquire()
    assert lock.holder(tmp_path) is None  # a stale pid in the file is not trusted


def test_status_round_trips_and_is_written_whole(tmp_path: Path) -> None:
    record = state.PassRecord(3, ("git",), state.now(), "abc", result="failed",
                              outcomes=({"op": "build", "result": "failed"},))
    status = state.Status(pid=1, applied_revision="abc", last_pass=record,
                          rejected=state.Rejection("def", "invalid manifests: a.yaml:3: x",
                                                   state.now()))
    for n in range(30):
        status = status.with_error(state.ErrorRecord(state.now(), f"e{n}"))
    state.write(tmp_path, status)
    back = state.read(tmp_path)
    assert back is not None and back.to_json() == status.to_json()
    assert len(back.errors) == state.KEEP_ERRORS and back.errors[-1].message == "e29"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp left


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


def test_suspension_is_persisted(tmp_path: Path) -> None:
    assert control.read(tmp_path).suspended is False
    control.set_suspended(tmp_path, True)
    assert control.read(tmp_path).suspended is True
    assert control.poke(tmp_path) is None  # no daemon: the file alone carries it
    control.set_suspended(tmp_path, False)
    assert control.read(tmp_path).suspended is False


# -- the loop's scheduling, with a scripted reconciler ----------------------------------


class Scripted:
    """Stands in for passes.Runner: returns the scripted reports, records calls."""

    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports
        self.calls: list[dict[str, Any]] = []

    def run(self, head: GitHead, **kwargs: Any) -> Report:
        self.calls.append({"head": head.revision, **kwargs})
        report = self.reports[min(len(self.calls), len(self.reports)) - 1]
        return Report(report.result, head.revision, head.revision, message=report.message,
                      transient=report.transient, rejection=report.rejection,
                      kernels=report.kernels)


@pytest.fixture
def looping(tmp_path: Path) -> Iterator[Callable[..., tuple[Daemon, Scripted, list[str]]]]:
    running: list[tuple[Daemon, threading.Thread]] = []

    def start(reports: list[Report]) -> tuple[Daemon, Scripted, list[str]]:
        heads = ["r1"]
        scripted = Scripted(reports)
        daemon = Daemon(
            Settings(state_dir=tmp_path, store=tmp_path / "store", poll_interval=3600), scripted,
            backoff=Backoff(base=0.05, cap=0.1),
            wakeup=Wakeup(debounce=0.01), notifier=Notifier({}),
            metrics=Metrics(Store(tmp_path / "store")),
            find=lambda _s: GitHead(heads[-1], "repo"),
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


# -- webhook ------------------------------------------------------------------------------


def test_webhook_signatures_of_each_forge() -> None:
    secret, body = b"s3cret", b'{"ref": "refs/heads/main"}'
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert authentic(secret, body, {"X-Hub-Signature-256": f"sha256={digest}"})
    assert authentic(secret, body, {"X-Gitea-Signature": digest})
    assert authentic(secret, body, {"X-Gitlab-Token": "s3cret"})
    assert not authentic(secret, body, {"X-Hub-Signature-256": f"sha256={'0' * 64}"})
    assert not authentic(secret, body + b" ", {"X-Hub-Signature-256": f"sha256={digest}"})
    assert not authentic(secret, body, {"X-Gitlab-Token": "guess"})
    assert not authentic(secret, body, {})


def test_webhook_endpoint_wakes_the_loop_only_when_signed() -> None:
    wakeup = Wakeup(debounce=0.01)
    server = WebhookServer(("127.0.0.1", 0), b"k", wakeup).start()
    url = f"http://127.0.0.1:{server.address[1]}/hook"
    body = b"{}"
    try:
        bad = urllib.request.Request(url, body, {"X-Hub-Signature-256": "sha256=00"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        assert wakeup.wait(0.1) == set()
        sig = hmac.new(b"k", body, hashlib.sha256).hexdigest()
        good = urllib.request.Request(url, body, {"X-Hub-Signature-256": f"sha256={sig}",
                                                  "X-GitHub-Event": "push"})
        with urllib.request.urlopen(good, timeout=5) as answer:
            assert answer.status == 202
        assert wakeup.wait(1) == {"webhook"}
        with pytest.raises(urllib.error.HTTPError) as get:
            urllib.request.urlopen(url, timeout=5)
        assert get.value.code == 405
        get.value.close()
    finally:
        server.stop()


# -- signatures -----------------------------------------------------------------------------


def test_only_commits_signed_by_an_allowed_ssh_key_pass(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"test@example.invalid {(tmp_path / 'key.pub').read_text()}")
    repo = GitRepo(tmp_path / "repo")
    unsigned = repo.commit({"a.yaml": "a: 1\n"})
    keys = gitsign.Keys(ssh_allowed_signers=allowed)
    with pytest.raises(gitsign.SignatureError, match="not signed by a trusted key"):
        gitsign.verify(str(repo.path), unsigned, keys)
    repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q",
             "--allow-empty", "-S", "-m", "signed")
    signed = repo.git("rev-parse", "HEAD")
    gitsign.verify(str(repo.path), signed, keys)
    other = gitsign.Keys(ssh_allowed_signers=tmp_path / "nobody")
    (tmp_path / "nobody").write_text("")
    with pytest.raises(gitsign.SignatureError):
        gitsign.verify(str(repo.path), signed, other)
    gitsign.verify(str(repo.path), unsigned, gitsign.Keys())  # not configured: no check


def test_a_pass_hanging_past_any_build_timeout_is_unhealthy(looping: Any) -> None:
    daemon, _, _ = looping([Report(PassResult.OK)])
    _until(lambda: daemon.status.applied_revision == "r1")
    assert daemon.healthy()
    daemon._pass_started = time.monotonic() - daemon.settings.build_timeout - 601
    assert not daemon.healthy()
    daemon._pass_started = None


def test_status_without_any_daemon_says_so(tmp_path: Path, capsys: Any) -> None:
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no daemon has run" in capsys.readouterr().err
