"""``reconciler run`` end to end: a real bare repository pushed to, a real engine, our real
server, the daemon as a real process (see conftest for what stands in for what)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.daemon.conftest import BROKEN_YAML, ROOT, Daemon, Site, host_yaml

pytestmark = pytest.mark.docker


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args,
                           "--state-dir", str(site.state_dir)],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=60)


def test_push_converges_a_broken_push_keeps_the_old_falco_and_a_fix_is_applied(
    site: Site,
) -> None:
    metrics_port = _port()
    site.publish_driver()
    first = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon("--metrics-listen", f"127.0.0.1:{metrics_port}")
    daemon.applied(first)
    running = site.falco()
    assert running.status == "running"
    assert running.labels["io.falco-reconciler.revision"] == first

    # A push of manifests that do not validate: refused, the old Falco stays.
    broken = site.push({"web.yaml": BROKEN_YAML}, "broken")
    status = daemon.wait_for(lambda s: (s.get("rejected") or {}).get("revision") == broken,
                             why="the broken revision refused")
    assert status["appliedRevision"] == first
    assert "web.yaml:" in status["rejected"]["reason"]  # file:line of the problem
    assert status["lastPass"]["result"] == "rejected"
    assert any(broken == e["revision"] for e in status["errors"])
    assert site.falco().id == running.id and site.falco().status == "running"
    human = _cli(site, "status")
    assert human.returncode == 0 and "refused:" in human.stdout, human.stdout

    # A fix is applied; the Falco is replaced because its env changed.
    fixed = site.push({"web.yaml": host_yaml(site.name, site.image, env={"FIXED": "1"})}, "fix")
    status = daemon.applied(fixed)
    assert status["rejected"] is None
    assert "FIXED=1" in site.falco().attrs["Config"]["Env"]

    # History rewritten and force-pushed: followed.
    site.work.git("reset", "-q", "--hard", first)
    rewritten = site.push({"web.yaml": host_yaml(site.name, site.image, env={"R": "2"})},
                          "rewritten", force=True)
    daemon.applied(rewritten)
    assert "R=2" in site.falco().attrs["Config"]["Env"]
    assert [c.name for c in site.containers()] == [site.name]

    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                     timeout=5).read().decode()
    assert 'reconciler_passes_total{result="ok"}' in scraped
    assert 'reconciler_passes_total{result="rejected"}' in scraped
    assert f'reconciler_applied_revision_info{{revision="{rewritten}"}} 1.0' in scraped
    assert "reconciler_artifacts_served 1.0" in scraped
    assert "reconciler_applied_revision_age_seconds" in scraped

    assert daemon.stop() == 0
    assert daemon.status()["phase"] == "stopped"
    as_json = json.loads(_cli(site, "status", "--json").stdout)
    assert as_json["running"] is False and as_json["appliedRevision"] == rewritten


def test_drift_is_mended_a_stopped_or_removed_falco_comes_back(site: Site) -> None:
    site.publish_driver()
    revision = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon()
    daemon.applied(revision)
    passes = daemon.status()["passes"]

    site.falco().stop(timeout=5)  # behind the daemon's back
    daemon.wait_for(lambda s: s["passes"] > passes and s["phase"] == "idle",
                    why="a pass after the container died")
    assert site.falco().status == "running"
    assert any(t.startswith("docker:") for t in daemon.status()["lastPass"]["trigger"])

    passes = daemon.status()["passes"]
    site.falco().remove(force=True)
    daemon.wait_for(lambda s: s["passes"] > passes and s["phase"] == "idle"
                    and s["lastPass"]["result"] == "ok", why="a pass after the removal")
    assert site.falco().status == "running"
    assert [c.name for c in site.containers()] == [site.name]


def test_a_deleted_artifact_is_noticed_and_its_failed_rebuild_leaves_falco_running(
    site: Site,
) -> None:
    """The rebuild cannot succeed on this machine (no headers for its kernel; the daemon is
    given a base image that does not exist): the daemon must notice the deletion at once,
    report the failed build, keep the running Falco, and mend when the file is back."""
    key = site.publish_driver()
    revision = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon()
    daemon.applied(revision)
    falco_id = site.falco().id

    site.store.path_of(key).unlink()
    status = daemon.wait_for(lambda s: s["phase"] == "idle" and s["lastPass"]["result"]
                             == "failed", why="the rebuild reported as failed")
    assert "store" in status["lastPass"]["trigger"]
    builds = [o for o in status["lastPass"]["outcomes"] if o["op"] == "build"]
    assert builds and builds[0]["result"] == "failed" and builds[0]["name"] == key.relpath
    assert status["appliedRevision"] == revision  # still the last fully applied one
    assert (site.falco().id, site.falco().status) == (falco_id, "running")

    site.publish_driver()
    daemon.wait_for(lambda s: s["phase"] == "idle" and s["lastPass"]["result"] == "ok",
                    why="converged once the artifact is back")
    assert site.falco().id == falco_id


def test_suspend_persists_across_restarts_and_the_server_keeps_serving(site: Site) -> None:
    key = site.publish_driver()
    first = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon("--listen", "127.0.0.1:0")  # an ephemeral port works as well
    status = daemon.applied(first)
    url = status["serving"] + key.url_path(with_arch=True)

    out = _cli(site, "suspend")
    assert out.returncode == 0, out.stderr
    daemon.wait_for(lambda s: s["phase"] == "suspended", why="suspended")
    second = site.push({"web.yaml": host_yaml(site.name, site.image, env={"S": "1"})})
    time.sleep(1.0)  # a push the daemon sees and must not act on
    assert daemon.status()["appliedRevision"] == first
    assert urllib.request.urlopen(url, timeout=5).status == 200

    assert daemon.stop() == 0
    daemon = site.daemon()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    status = daemon.wait_for(lambda s: s["phase"] == "suspended" and s["pid"] == pid,
                             why="the new daemon starts suspended")
    assert status["appliedRevision"] == first and status["suspended"] is True
    assert json.loads(_cli(site, "status", "--json").stdout)["suspended"] is True

    assert _cli(site, "resume").returncode == 0
    daemon.applied(second)
    assert "S=1" in site.falco().attrs["Config"]["Env"]


def test_reconcile_command_and_sighup_run_a_pass_now_and_one_daemon_per_state_dir(
    site: Site,
) -> None:
    site.publish_driver()
    revision = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon("--poll-interval", "3600")
    daemon.applied(revision)
    before = daemon.status()["passes"]
    out = _cli(site, "reconcile")
    assert out.returncode == 0, out.stderr
    daemon.wait_for(lambda s: s["passes"] > before and "sighup" in s["lastPass"]["trigger"],
                    why="a pass triggered by reconcile")

    second = site.daemon()
    assert second.proc is not None
    assert second.proc.wait(timeout=60) == 1
    assert "another daemon" in second.tail()
    assert daemon.proc is not None and daemon.proc.poll() is None

    assert daemon.stop(signal.SIGTERM) == 0
    with pytest.raises(OSError):  # the server is closed
        urllib.request.urlopen(daemon.status()["serving"] + "/healthz", timeout=2)


def test_an_unreachable_remote_keeps_falco_running_and_is_retried(site: Site) -> None:
    """A clone URL that stops answering: the pass fails transiently, Falco and the server
    stay, and the retry (backoff) picks the repository up once it answers again."""
    site.publish_driver()
    revision = site.push({"web.yaml": host_yaml(site.name, site.image)})
    url = f"file://{site.bare}"
    args = [a if a != str(site.bare) else url for a in site.args("--backoff-max", "2")]
    daemon = Daemon(args, site.state_dir, site.tmp / "daemon.log").start()
    site.daemons.append(daemon)
    daemon.applied(revision)
    falco_id = site.falco().id
    hidden = site.bare.with_name("away.git")
    site.bare.rename(hidden)
    assert _cli(site, "reconcile").returncode == 0
    status = daemon.wait_for(lambda s: s["lastPass"]["result"] == "error"
                             and s["nextRetryAt"], why="a transient error with a retry")
    assert "cannot fetch" in status["lastPass"]["message"]
    assert (site.falco().id, site.falco().status) == (falco_id, "running")
    urllib.request.urlopen(status["serving"] + "/healthz", timeout=5)
    hidden.rename(site.bare)
    later = site.push({"web.yaml": host_yaml(site.name, site.image, env={"BACK": "1"})})
    daemon.applied(later)


def test_with_signature_checks_only_signed_commits_are_applied(site: Site) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = site.tmp / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = site.tmp / "allowed_signers"
    allowed.write_text(f"test@example.invalid {(site.tmp / 'key.pub').read_text()}")
    site.publish_driver()
    site.work.git("config", "gpg.format", "ssh")
    site.work.git("config", "user.signingkey", str(key))
    site.work.git("config", "commit.gpgsign", "true")
    signed = site.push({"web.yaml": host_yaml(site.name, site.image)})
    daemon = site.daemon("--verify-ssh-allowed-signers", str(allowed))
    daemon.applied(signed)
    site.work.git("config", "commit.gpgsign", "false")
    unsigned = site.push({"web.yaml": host_yaml(site.name, site.image, env={"U": "1"})})
    status = daemon.wait_for(lambda s: (s.get("rejected") or {}).get("revision") == unsigned,
                             why="the unsigned commit refused")
    assert "not signed by a trusted key" in status["rejected"]["reason"]
    assert status["appliedRevision"] == signed
    assert "U=1" not in site.falco().attrs["Config"]["Env"]


def test_a_remote_followed_by_url_is_fetched_when_its_webhook_is_called(site: Site) -> None:
    """No inotify for a remote and a poll an hour away: only the webhook brings the push."""
    site.publish_driver()
    first = site.push({"web.yaml": host_yaml(site.name, site.image)})
    secret = site.tmp / "secret"
    secret.write_text("hook-secret\n")
    port = _port()
    args = [a if a != str(site.bare) else f"file://{site.bare}" for a in site.args(
        "--poll-interval", "3600", "--webhook-listen", f"127.0.0.1:{port}",
        "--webhook-secret-file", str(secret))]
    daemon = Daemon(args, site.state_dir, site.tmp / "daemon.log").start()
    site.daemons.append(daemon)
    daemon.applied(first)
    second = site.push({"web.yaml": host_yaml(site.name, site.image, env={"HOOK": "1"})})
    body = b'{"ref": "refs/heads/main"}'
    signature = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", body, {
        "X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Event": "push"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 202
    status = daemon.applied(second)
    assert "webhook" in status["lastPass"]["trigger"]
    assert "HOOK=1" in site.falco().attrs["Config"]["Env"]
