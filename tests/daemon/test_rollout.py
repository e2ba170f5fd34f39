"""The rollout hook in a real pass (``passes.Runner``: real git, planner, executor and
ledger; only the container engine is the in-memory fake): what a held host plans, that a
revision changing nothing it runs is applied at once, and that a lost ledger never lets
a host skip its soak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler import runtime
from reconciler.daemon import passes
from reconciler.edges.docker.fake import FakeEngine
from reconciler.edges.state import waves as ledger
from reconciler.settings import Settings
from tests.conftest import GitRepo

ROLLOUT = """apiVersion: falco-reconciler/v1
kind: Rollout
metadata: {name: fleet}
spec:
  waves:
  - {name: canary, hostnames: [web-1]}
  - {name: web, soak: 1h}
"""


IMAGE = "docker.io/falcosecurity/falco:0.37.1"


def host(name: str, step: str) -> str:
    return (f"apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {{name: {name}}}\n"
            f"spec:\n  match: {{hostnames: [{name}]}}\n  falco:\n    version: 0.37.1\n"
            f"    driver: modern_ebpf\n    containerName: falco-{name}\n"
            f"    webserverPort: null\n    env: {{STEP: \"{step}\"}}\n")


def _pass(conf: Settings, engine: FakeEngine, last_good: str | None) -> passes.Report:
    shared = runtime.Shared.for_settings(conf)
    runner = passes.Runner(conf, lambda: runtime.open_runtime(
        conf, shared=shared, connect=lambda _timeout: engine))
    return runner.run(passes.find_head(conf), last_good=last_good, refused=None,
                          container=None)


def test_a_held_host_plans_what_it_runs_and_takes_changes_that_are_not_its_own(
        tmp_path: Path, git_repo: GitRepo, make_host_root: Any) -> None:
    conf = Settings(repo=str(git_repo.path), host_root=make_host_root(hostname="web-2"),
                    store=tmp_path / "store", state_dir=tmp_path / "state",
                    privileged=False, settle=0.0)
    engine = FakeEngine(images={IMAGE: "sha256:" + "1" * 64})
    first = git_repo.commit({"rollout.yaml": ROLLOUT, "web-2.yaml": host("web-2", "0"),
                             "db-1.yaml": host("db-1", "0")})
    report = _pass(conf, engine, None)
    assert (report.result, report.planned) == (passes.PassResult.OK, first)

    # Another host's change: nothing this host runs changes, so no wave waits for it.
    other = git_repo.commit({"db-1.yaml": host("db-1", "1")})
    report = _pass(conf, engine, first)
    assert (report.planned, report.rollout and report.rollout.decision.held) == (other, "")

    # Its own change waits for the canary's soak, and the pass keeps what it runs.
    own = git_repo.commit({"web-2.yaml": host("web-2", "1")})
    report = _pass(conf, engine, other)
    assert report.result is passes.PassResult.OK and report.planned == other
    assert report.rollout is not None
    assert report.rollout.decision.held == "held: wave web waits for canary (0s of 1h soak)"
    assert ledger.read(conf.state_dir).target == other

    # A lost ledger: the host starts again from what it applied, and waits again.
    ledger.path(conf.state_dir).unlink()
    report = _pass(conf, engine, other)
    assert report.planned == other and own != other


def test_without_a_rollout_the_head_is_planned_and_no_ledger_is_kept(
        tmp_path: Path, git_repo: GitRepo, make_host_root: Any) -> None:
    conf = Settings(repo=str(git_repo.path), host_root=make_host_root(hostname="web-2"),
                    store=tmp_path / "store", state_dir=tmp_path / "state",
                    privileged=False, settle=0.0)
    head = git_repo.commit({"web-2.yaml": host("web-2", "0")})
    report = _pass(conf, FakeEngine(images={IMAGE: "sha256:" + "1" * 64}), None)
    assert (report.planned, report.rollout) == (head, None)
    assert not ledger.path(conf.state_dir).exists()
