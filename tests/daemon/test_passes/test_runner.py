"""One pass (``passes.Runner.run``) in process: a real git repository, store and host
root, the real planner and executor; the container engine is the in-memory fake
(``reconciler.testing.FakeEngine``), standing in for Docker. What is checked is what the
pass decides: a refused head keeps the last good revision, an unsigned one is refused, a
known-bad head is not planned again, a set-aside Falco is mended first, a failed change
is counted with its cause kept in its outcome, and an engine that cannot be reached is a
transient error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime
from reconciler.daemon import passes, state
from reconciler.edges.store.local import Store
from reconciler.errors import DockerUnavailable
from reconciler.model import container
from reconciler.model.artifacts import parse_relpath
from reconciler.settings import Settings
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml
from tests.support.sshkeys import allowed_signer

# Falco 0.32.2's loader on the default host root (Debian 11, 5.10.0-14-cloud-amd64).
GOOD = "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko"
NAME = "falco-pass"
BROKEN = "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec: [\n"


def runner_on(conf: Settings, engine: FakeEngine) -> passes.Runner:
    shared = runtime.Shared.for_settings(conf)
    return passes.Runner(conf, lambda: runtime.open_runtime(
        conf, shared=shared, connect=lambda _timeout: engine))


@pytest.fixture
def conf(tmp_path: Path, git_repo: GitRepo, make_host_root: Any) -> Settings:
    """Host web-1 whose driver is already in the store (no build is tried)."""
    settings = Settings(repo=str(git_repo.path), host_root=make_host_root(hostname="web-1"),
                        store=tmp_path / "store", state_dir=tmp_path / "state",
                        privileged=False, settle=0)
    key = parse_relpath(GOOD)
    assert key is not None
    module = tmp_path / "module.ko"
    module.write_bytes(b"a module, as far as the pass cares")
    Store(settings.store).publish(key, module)
    return settings


def test_a_head_that_does_not_validate_is_refused_and_the_last_good_one_planned(
    conf: Settings, git_repo: GitRepo,
) -> None:
    good = git_repo.commit({"web.yaml": host_yaml("0.32.2", name=NAME)})
    bad = git_repo.commit({"web.yaml": BROKEN})
    report = runner_on(conf, FakeEngine()).run(
        passes.GitHead(bad, str(git_repo.path)), last_good=good, refused=None, container=None)
    assert report.result is passes.PassResult.REJECTED
    assert (report.head, report.planned) == (bad, good)
    assert report.rejection is not None
    assert report.rejection.startswith("invalid manifests: web.yaml:5: YAML syntax error")
    assert report.message == f"revision {bad[:12]} refused ({report.rejection}); kept {good[:12]}"
    # The last good revision was planned: its kernel's driver is reported, and ready.
    assert report.kernels == (state.KernelDriver("5.10.0-14-cloud-amd64", True, GOOD, True),)


def test_a_head_refused_before_is_not_planned_again(conf: Settings, git_repo: GitRepo) -> None:
    bad = git_repo.commit({"web.yaml": BROKEN})
    report = runner_on(conf, FakeEngine()).run(
        passes.GitHead(bad, str(git_repo.path)), last_good=None, refused=bad, container=None)
    assert report.result is passes.PassResult.REJECTED
    assert report.rejection == "unchanged since it was refused"
    assert report.message == "nothing applied yet; waiting for a revision that validates"
    assert report.planned is None and report.kernels is None  # no plan was made


def test_an_unsigned_head_is_refused_when_signatures_are_required(
    conf: Settings, git_repo: GitRepo, tmp_path: Path,
) -> None:
    _key, allowed = allowed_signer(tmp_path)
    signed_only = Settings(**{**vars(conf), "verify_ssh_allowed_signers": allowed})
    head = git_repo.commit({"web.yaml": host_yaml("0.32.2", name=NAME)})
    report = runner_on(signed_only, FakeEngine()).run(
        passes.GitHead(head, str(git_repo.path)), last_good=None, refused=None, container=None)
    assert report.result is passes.PassResult.REJECTED
    assert report.rejection is not None and "not signed by a trusted key" in report.rejection


def test_a_falco_left_aside_by_a_killed_replace_is_put_back_before_anything_else(
    conf: Settings, git_repo: GitRepo,
) -> None:
    engine = FakeEngine(images={"falco:old": "sha256:old"})
    old = engine.create(image="falco:old", name=NAME, labels={container.LABEL_MANAGED: "true"})
    engine.start(old)
    engine.stop(old, 10)
    engine.rename(old, container.aside_name(NAME, old))  # killed here, mid-replace
    bad = git_repo.commit({"web.yaml": BROKEN})
    runner_on(conf, engine).run(passes.GitHead(bad, str(git_repo.path)), last_good=None,
                                    refused=bad, container=NAME)
    back = engine.container(NAME)
    assert back is not None and back.id == old
    assert back.running  # not running when set aside, but it was ours: started again


def test_a_failed_change_is_counted_and_its_cause_kept_in_its_outcome(
    conf: Settings, git_repo: GitRepo,
) -> None:
    """The image cannot be pulled (the fake engine has none to give): the one change
    fails, the pass counts it, its outcome says why, and a pull failure is worth
    retrying."""
    head = git_repo.commit({"web.yaml": host_yaml("0.32.2", name=NAME)})
    report = runner_on(conf, FakeEngine()).run(
        passes.GitHead(head, str(git_repo.path)), last_good=None, refused=None, container=None)
    assert report.result is passes.PassResult.FAILED
    assert report.message == "1 of 1 change(s) failed"  # the cause is the outcome's
    [failed] = report.outcomes
    assert (failed.change.op.value, failed.change.name) == ("create", NAME)
    assert failed.message.startswith("cannot pull falco-reconciler/falco-standin")
    assert report.transient
    assert report.container == NAME


def test_an_engine_that_cannot_be_reached_is_a_transient_error(
    conf: Settings, git_repo: GitRepo,
) -> None:
    def unreachable(_timeout: float) -> FakeEngine:
        raise DockerUnavailable("no Docker engine answers at unix:///nowhere")

    head = git_repo.commit({"web.yaml": host_yaml("0.32.2", name=NAME)})
    runner = passes.Runner(conf, lambda: runtime.open_runtime(conf, connect=unreachable))
    report = runner.run(passes.GitHead(head, str(git_repo.path)), last_good=None,
                            refused=None, container=None)
    assert report.result is passes.PassResult.ERROR
    assert (report.head, report.transient) == (head, True)
    assert report.message == "no Docker engine answers at unix:///nowhere"
