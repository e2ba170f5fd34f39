"""The planner over fakes of our own engine Protocol (no Docker needed): manifests are
parsed once per tree, and what the edges report reaches the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime, settings
from reconciler.edges.docker.fake import FakeEngine
from reconciler.loadtest import quarantine
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.manifests import loading
from reconciler.model import container
from reconciler.plan import planner, render
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml


@pytest.fixture
def made(git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> runtime.Runtime:
    git_repo.commit({"web.yaml": host_yaml(image="docker.io/falcosecurity/falco"),
                     "other.yaml": host_yaml(name="falco-other").replace("name: web", "name: other")
                     .replace("[web-*]", "[db-*]")})
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="web-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    return runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf))


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    loads: list[int] = []
    real = loading.load

    def load(files: Any, memo: Any = None) -> Any:
        loads.append(len(files))
        return real(files, memo)

    monkeypatch.setattr(planner.loading, "load", load)
    return loads


def test_an_unchanged_revision_is_not_parsed_again(
    made: runtime.Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = counting_loads(monkeypatch)
    first = made.planner().plan()
    second = made.planner().plan()
    assert loads == [2]
    assert second.plan == first.plan
    assert second.inputs.manifests is first.inputs.manifests


def test_a_new_tree_is_parsed_and_the_old_one_is_still_known(
    made: runtime.Runtime, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = counting_loads(monkeypatch)
    old = git_repo.git("rev-parse", "HEAD")
    made.planner().plan()
    git_repo.commit({"web.yaml": host_yaml(env={"A": "1"},
                                           image="docker.io/falcosecurity/falco")})
    changed = made.planner().plan()
    assert changed.desired.container is not None
    assert changed.desired.container.spec.env_dict["A"] == "1"
    back = made.planner(ref=old).plan()  # the last good revision, as the daemon plans it
    assert loads == [2, 2]
    assert back.inputs.revision == old


def test_a_one_file_push_parses_only_that_file(
    made: runtime.Runtime, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[str] = []
    real = loading._FileReader.read

    def counting(self: Any, content: bytes, budget: int) -> Any:
        read.append(self.relpath)
        return real(self, content, budget)

    monkeypatch.setattr(loading._FileReader, "read", counting)
    made.planner().plan()
    assert sorted(read) == ["other.yaml", "web.yaml"]
    git_repo.commit({"web.yaml": host_yaml(env={"A": "2"},
                                           image="docker.io/falcosecurity/falco")})
    changed = made.planner().plan()
    assert read[2:] == ["web.yaml"]  # other.yaml came from the memo
    assert changed.desired.container is not None
    assert changed.desired.container.spec.env_dict["A"] == "2"
    assert changed.inputs.manifests.hosts[0].origin.file == "other.yaml"  # order kept


def test_a_fresh_host_plans_a_build_and_a_create_from_the_fake_engine(
    made: runtime.Runtime,
) -> None:
    planned = made.planner().plan()
    assert [(c.kind.value, c.op.value) for c in planned.plan.changes] == [
        ("driver", "build"), ("container", "create")]
    assert planned.observed.image is not None and planned.observed.image.local_id is None


def test_where_the_loader_names_no_driver_the_plan_says_so_and_builds_nothing(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    """Falco 0.37's falcoctl leaves an Amazon Linux host without VERSION_ID undetermined:
    it would download nothing, so nothing is built and Falco is not started for it."""
    git_repo.commit({"web.yaml": host_yaml(version="0.37.1",
                                           image="docker.io/falcosecurity/falco")})
    root = make_host_root(os_release='ID="amzn"\nNAME="Amazon Linux"\n',
                          release="6.1.55-75.123.amzn2023.x86_64")
    conf = settings.Settings(repo=str(git_repo.path), host_root=root, hostname="web-1",
                             store=tmp_path / "store", state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf)
                              ).planner().plan()
    assert planned.plan.changes == ()
    assert planned.desired.artifacts == ()
    (note,) = planned.plan.notes
    assert note.startswith("Falco 0.37.1's loader names no driver on this host (")
    assert note.endswith("): nothing is built for it, and Falco is left as it is")
    assert "undetermined" in note


def test_a_reconciler_acts_only_on_the_containers_of_its_own_host_name(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    """On an engine shared by reconcilers acting as different hosts (a lab, the tests),
    a host that no Host matches removes only the Falco it made, never another's; one
    without the label (made before labels named the host) still counts as its own."""
    git_repo.commit({"db.yaml": host_yaml(name="falco-db", image="docker.io/falcosecurity/falco")
                     .replace("[web-*]", "[db-*]")})
    engine = FakeEngine(images={"falco:x": "sha256:x"})
    for name, hostname in (("falco-mine", "build-1"), ("falco-other", "build-2"),
                           ("falco-old", None)):
        labels = {container.LABEL_MANAGED: "true"}
        if hostname:
            labels[container.LABEL_HOSTNAME] = hostname
        engine.start(engine.create(image="falco:x", name=name, labels=labels))
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="build-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, engine, runtime.Shared.for_settings(conf)).planner().plan()
    assert sorted((c.op.value, c.name) for c in planned.plan.changes) == [
        ("remove", "falco-mine"), ("remove", "falco-old")]


def test_a_quarantined_driver_reaches_the_plan_line_of_its_build(
    made: runtime.Runtime,
) -> None:
    """The gate's quarantine folder in the state dir (as the gate writes it) is read by the
    planner: the missing driver's build line says it was held back, and why."""
    first = made.planner().plan().plan
    (build,) = [c for c in first.changes if c.op.value == "build"]
    assert "held back" not in build.reason_text
    where = quarantine.folder(made.settings.state_dir) / build.name
    where.parent.mkdir(parents=True)
    where.with_name(where.name + ".loadtest.json").write_text(json.dumps(LoadTestResult(
        Outcome.FAILED, "kmod", ("Oops: general protection fault",)).to_json()))
    text = render.as_text(made.planner().plan().plan)
    assert "held back by its load test before: failed: Oops: general protection fault" in text
